using DeepSeek.Engine;

namespace DeepSeek.Runtime.Hosting;

/// <summary>What <c>serve</c> was asked to do, after flags and environment defaults are merged.</summary>
public sealed record ServeSettings
{
    public string Host { get; init; } = "0.0.0.0";
    public int HttpPort { get; init; } = 8000;
    public int GrpcPort { get; init; } = 50051;

    /// <summary>The model and its engine; null serves probes and metrics only (host tests).</summary>
    public EngineSettings? Engine { get; init; }
}
