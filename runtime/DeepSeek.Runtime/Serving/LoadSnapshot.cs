namespace DeepSeek.Runtime.Serving;

/// <summary>The engine's load as the autoscaler and <c>GetLoad</c> see it.</summary>
public sealed record LoadSnapshot
{
    public int Waiting { get; init; }
    public int Running { get; init; }
    public double KvCacheUsage { get; init; }
    public double RecentTokensPerSecond { get; init; }
    public bool Ready { get; init; }
    public int MaxRunningRequests { get; init; }
    public int MaxQueuedRequests { get; init; }
}
