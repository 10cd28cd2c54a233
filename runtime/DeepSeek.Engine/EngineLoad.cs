namespace DeepSeek.Engine;

/// <summary>
/// A snapshot of the engine's load (what gRPC <c>GetLoad</c> and the autoscaler read), with running
/// totals of prefix-cache tokens and preemptions since start.
/// </summary>
public sealed record EngineLoad(
    int Waiting,
    int Running,
    double KvCacheUsage,
    double TokensPerSecond,
    bool Draining,
    long PrefixCacheQueriedTokens = 0,
    long PrefixCacheHitTokens = 0,
    long Preemptions = 0);
