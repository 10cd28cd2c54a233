namespace DeepSeek.Operator.Autoscaling;

/// <summary>One replica leader's answer to <c>GetLoad</c>, in the operator's own terms.</summary>
public sealed record LoadSnapshot(
    int Waiting,
    int Running,
    double KvCacheUsage = 0,
    double RecentTokensPerSecond = 0,
    int MaxRunningRequests = 0,
    int MaxQueuedRequests = 0);
