namespace DeepSeek.Engine;

/// <summary>A snapshot of the engine's load (what gRPC <c>GetLoad</c> and the autoscaler read).</summary>
public sealed record EngineLoad(int Waiting, int Running, double KvCacheUsage, double TokensPerSecond, bool Draining);
