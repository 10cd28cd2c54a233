namespace DeepSeek.Engine;

/// <summary>
/// The engine's settings: the one place their defaults are written and checked. <c>serve</c>,
/// <c>bench</c> and <c>generate</c> build it from their flags (taking unset flags' defaults from
/// <see cref="Defaults"/>), the scheduler and admission read their limits from it, and
/// <see cref="ContextTokens"/> is the only place the context length is clamped.
/// </summary>
public sealed record EngineOptions
{
    /// <summary>Every default, for flags that need one before the record is built.</summary>
    public static EngineOptions Defaults { get; } = new();

    /// <summary>The <c>model</c> label of the metrics.</summary>
    public string ServedModelName { get; init; } = "deepseek";

    /// <summary>cpu or cuda[:N]: where the KV cache goes and whose free memory sizes it.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Requests holding KV blocks at once (<c>--max-running-requests</c>).</summary>
    public int MaxRunningRequests { get; init; } = 64;

    /// <summary>Admitted requests waiting for a first step; more are refused (<c>--max-queued-requests</c>).</summary>
    public int MaxQueuedRequests { get; init; } = 256;

    /// <summary>Tokens, prefill chunks and decodes together, in one forward pass (<c>--max-batch-tokens</c>).</summary>
    public int MaxBatchTokens { get; init; } = 2048;

    /// <summary>Wins over <see cref="KvCacheMemoryFraction"/> when set (<c>--kv-cache-blocks</c>).</summary>
    public int? KvCacheBlocks { get; init; }

    /// <summary>Share of the device memory free after the weights (see <c>DeviceMemory</c>; <c>--kv-cache-memory-fraction</c>).</summary>
    public double KvCacheMemoryFraction { get; init; } = 0.9;

    /// <summary>Tokens per KV block (<c>--block-size</c>).</summary>
    public int BlockSize { get; init; } = 16;

    /// <summary>Reuse the KV blocks of shared prompt prefixes (<c>--prefix-caching</c>).</summary>
    public bool EnablePrefixCaching { get; init; } = true;

    /// <summary>
    /// Replay decode steps as CUDA graphs (<c>--cuda-graphs</c>): on CUDA with the native helper, bf16
    /// experts computed by its grouped GEMM or int4 experts by its own kernels; elsewhere it has no
    /// effect (the log says why).
    /// </summary>
    public bool CudaGraphs { get; init; } = true;

    /// <summary>Distinct LoRA adapters one step may mix, each in a device slot (<c>--max-loras</c>); more adapters wait in host memory.</summary>
    public int MaxLoras { get; init; } = 1;

    /// <summary>The largest LoRA rank served; the device slots are this wide (<c>--max-lora-rank</c>).</summary>
    public int MaxLoraRank { get; init; } = 16;

    /// <summary>Null: the model's <c>max_position_embeddings</c>; a smaller value caps the context (<c>--max-context-length</c>).</summary>
    public int? MaxModelLength { get; init; }

    /// <summary>Window over which <see cref="EngineLoad.TokensPerSecond"/> is averaged.</summary>
    public TimeSpan ThroughputWindow { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Model steps that may fail one after another before the engine gives up and reports itself
    /// failed: one failure fails that step's requests and serving goes on, but a device that fails
    /// every step (lost GPU, corrupted state) would only turn every request into an error.
    /// </summary>
    public int MaxConsecutiveStepFailures { get; init; } = 3;

    /// <summary>Throws <see cref="ArgumentException"/> naming the flag of every value out of range.</summary>
    public void Validate()
    {
        if (Problems().ToList() is { Count: > 0 } problems) throw new ArgumentException(string.Join(" ", problems));
    }

    /// <summary>Every value out of range, each naming its flag; <c>serve</c> reports them with its own.</summary>
    public IEnumerable<string> Problems()
    {
        if (string.IsNullOrWhiteSpace(ServedModelName)) yield return "--served-name must not be empty.";
        if (string.IsNullOrWhiteSpace(Device)) yield return "--device must not be empty.";
        if (MaxRunningRequests < 1) yield return $"--max-running-requests must be at least 1, got {MaxRunningRequests}.";
        if (MaxQueuedRequests < 0) yield return $"--max-queued-requests must be 0 or more, got {MaxQueuedRequests}.";
        if (MaxBatchTokens < 1) yield return $"--max-batch-tokens must be at least 1, got {MaxBatchTokens}.";
        if (BlockSize is < 1 or > 1024) yield return $"--block-size must be between 1 and 1024, got {BlockSize}.";
        if (KvCacheBlocks is < 1) yield return $"--kv-cache-blocks must be at least 1, got {KvCacheBlocks}.";
        if (!(KvCacheMemoryFraction > 0 && KvCacheMemoryFraction <= 1)) yield return $"--kv-cache-memory-fraction must be in (0, 1], got {KvCacheMemoryFraction}.";
        if (MaxLoras < 1) yield return $"--max-loras must be at least 1, got {MaxLoras}.";
        if (MaxLoraRank is < 1 or > 512) yield return $"--max-lora-rank must be between 1 and 512, got {MaxLoraRank}.";
        if (MaxModelLength is < 2) yield return $"--max-context-length must be at least 2 tokens, got {MaxModelLength}.";
        if (ThroughputWindow <= TimeSpan.Zero) yield return $"The throughput window must be positive, got {ThroughputWindow}.";
        if (MaxConsecutiveStepFailures < 1) yield return $"MaxConsecutiveStepFailures must be at least 1, got {MaxConsecutiveStepFailures}.";
    }

    /// <summary>
    /// The longest prompt plus output the engine serves: <see cref="MaxModelLength"/> if set, never
    /// more than the model's positions, and never more than the KV pool holds (so an admitted request
    /// can always run to its end alone). Before the pool is sized, leave <paramref name="poolCapacityTokens"/> out.
    /// </summary>
    public int ContextTokens(int maxPositionEmbeddings, long poolCapacityTokens = long.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPositionEmbeddings, 1);
        var model = Math.Min(MaxModelLength ?? maxPositionEmbeddings, maxPositionEmbeddings);
        return (int)Math.Min(model, poolCapacityTokens);
    }
}
