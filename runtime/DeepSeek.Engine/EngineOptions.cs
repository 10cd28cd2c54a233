using static TorchSharp.torch;

namespace DeepSeek.Engine;

/// <summary>The engine's settings, as <c>serve</c> and <c>bench</c> pass them from their flags.</summary>
public sealed record EngineOptions
{
    /// <summary>The <c>model</c> label of the metrics.</summary>
    public string ServedModelName { get; init; } = "deepseek";

    /// <summary>cpu or cuda[:N]: where the KV cache goes and whose free memory sizes it.</summary>
    public string Device { get; init; } = "cpu";

    public int MaxRunningRequests { get; init; } = 64;

    public int MaxQueuedRequests { get; init; } = 256;

    public int MaxBatchTokens { get; init; } = 2048;

    /// <summary>Wins over <see cref="KvCacheMemoryFraction"/> when set.</summary>
    public int? KvCacheBlocks { get; init; }

    /// <summary>Share of the device memory free after the weights (see <c>DeviceMemory</c>).</summary>
    public double KvCacheMemoryFraction { get; init; } = 0.9;

    public int BlockSize { get; init; } = 16;

    public bool EnablePrefixCaching { get; init; } = true;

    /// <summary>Null: the model's <c>max_position_embeddings</c>; a smaller value caps the context.</summary>
    public int? MaxModelLength { get; init; }

    /// <summary>Window over which <see cref="EngineLoad.TokensPerSecond"/> is averaged.</summary>
    public TimeSpan ThroughputWindow { get; init; } = TimeSpan.FromSeconds(10);

    public void Validate()
    {
        if (MaxRunningRequests < 1) throw new ArgumentException($"--max-running-requests must be at least 1, got {MaxRunningRequests}.");
        if (MaxQueuedRequests < 0) throw new ArgumentException($"--max-queued-requests must be 0 or more, got {MaxQueuedRequests}.");
        if (MaxBatchTokens < 1) throw new ArgumentException($"--max-batch-tokens must be at least 1, got {MaxBatchTokens}.");
        if (BlockSize is < 1 or > 1024) throw new ArgumentException($"--block-size must be between 1 and 1024, got {BlockSize}.");
        if (KvCacheBlocks is < 1) throw new ArgumentException($"--kv-cache-blocks must be at least 1, got {KvCacheBlocks}.");
        if (!(KvCacheMemoryFraction > 0 && KvCacheMemoryFraction <= 1))
            throw new ArgumentException($"--kv-cache-memory-fraction must be in (0, 1], got {KvCacheMemoryFraction}.");
        if (MaxModelLength is < 2) throw new ArgumentException($"The context length must be at least 2 tokens, got {MaxModelLength}.");
    }
}
