namespace DeepSeek.Operator.Desired;

/// <summary>The runtime's ports and endpoints (the runtime's contract).</summary>
public static class RuntimePorts
{
    public const int Http = 8000;
    public const int Grpc = 50051;
    public const string HttpName = "http";
    public const string GrpcName = "grpc";
    public const string ReadyPath = "/ready";
    public const string HealthPath = "/health";
    public const string ModelMountPath = "/models";
    public const int RunAsUser = 1000;
}
