namespace DeepSeek.Operator.Leadership;

/// <summary>The Lease the operator replicas compete for, and its timings (client-go's defaults: 15 s, 10 s, 2 s).</summary>
public sealed record LeaderElectionSettings
{
    public string Namespace { get; init; } = Environment.GetEnvironmentVariable("POD_NAMESPACE") is { Length: > 0 } ns ? ns : "default";
    public string LeaseName { get; init; } = "deepseek-operator-leader";
    public string Identity { get; init; } = DefaultIdentity();
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(15);
    public TimeSpan RenewDeadline { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan RetryPeriod { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Unique per process: the pod's name (downward API POD_NAME), else the host name, plus the process id.</summary>
    public static string DefaultIdentity() =>
        $"{(Environment.GetEnvironmentVariable("POD_NAME") is { Length: > 0 } pod ? pod : Environment.MachineName)}_{Environment.ProcessId}";
}
