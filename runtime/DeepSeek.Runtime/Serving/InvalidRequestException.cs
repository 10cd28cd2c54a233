namespace DeepSeek.Runtime.Serving;

/// <summary>Input the engine cannot run, named by its API field: HTTP 400, gRPC INVALID_ARGUMENT.</summary>
public sealed class InvalidRequestException(string param, string message) : InferenceRejectedException(message)
{
    public string Param { get; } = param;
}
