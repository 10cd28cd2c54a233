using DeepSeek.Engine;

namespace DeepSeek.Runtime.Hosting;

/// <summary>What <c>serve</c> was asked to do, after flags and environment defaults are merged.</summary>
public sealed record ServeSettings
{
    public string Host { get; init; } = "0.0.0.0";
    public int HttpPort { get; init; } = 8000;
    public int GrpcPort { get; init; } = 50051;
    /// <summary>When set, <c>/v1/*</c> and the gRPC Inference service need <c>Authorization: Bearer</c> with it.</summary>
    public string? ApiKey { get; init; }
    /// <summary>A file whose first line is the key (a mounted Secret); exclusive with <see cref="ApiKey"/>.</summary>
    public string? ApiKeyFile { get; init; }
    /// <summary>Largest accepted HTTP request body; larger ones get 413.</summary>
    public long MaxRequestBytes { get; init; } = 8 * 1024 * 1024;

    /// <summary>This process's expert-parallel group; world size 1 (the default) is no group.</summary>
    public Experts.ExpertParallelSettings Parallel { get; init; } = new();

    /// <summary>The model and its engine; null serves probes and metrics only (host tests) unless a backend is given.</summary>
    public EngineSettings? Engine { get; init; }
}

/// <summary>The model <c>serve</c> loads and the engine limits it runs with.</summary>
public sealed record EngineSettings(string ModelDirectory, string DType, EngineOptions Options, TimeSpan DrainTimeout)
{
    /// <summary><c>--quantization</c>: none or int4 (<see cref="DeepSeek.Model.Quantization.WeightQuantization"/>).</summary>
    public string Quantization { get; init; } = "none";
}
