using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;

namespace DeepSeek.Model.Planning;

/// <summary>
/// Where one rank's GPU memory goes when a model runs expert-parallel over
/// <see cref="ExpertParallelSize"/> ranks (attention and every other non-expert weight replicated on
/// each rank, the routed experts sharded), and how many tokens of MLA KV cache fit in the rest.
/// <code>
/// experts per rank per layer = ⌈(n_routed_experts + redundant) / EP⌉
/// weights   = replicated + experts per rank per layer × bytes of one expert over all MoE layers
/// reserve   = <see cref="MemoryReserve"/>
/// KV tokens = ⌊(gpu − weights − reserve) / (layers × (kv_lora_rank + qk_rope_head_dim) × dtype bytes)⌋
/// fits      = KV tokens ≥ one context
/// </code>
/// </summary>
public sealed record MemoryPlan(
    WeightFormat Format,
    int ExpertParallelSize,
    long GpuMemoryBytes,
    long ReplicatedBytes,
    int ExpertsPerRankPerLayer,
    int RedundantExperts,
    long RoutedExpertBytes,
    long ReserveBytes,
    long KvCacheBytes,
    long KvBytesPerToken,
    long KvTokens,
    int ContextTokens)
{
    public long WeightBytes => ReplicatedBytes + RoutedExpertBytes;

    /// <summary>The KV cache holds at least one whole context, which serve needs to admit a request at all.</summary>
    public bool Fits => KvTokens >= ContextTokens;

    /// <summary>The plan of one rank of <paramref name="expertParallelSize"/>, each with <paramref name="gpuMemoryBytes"/>.</summary>
    public static MemoryPlan For(DeepSeekConfig config, WeightBytes weights, long gpuMemoryBytes, int expertParallelSize, MemoryPlanOptions options)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(expertParallelSize);
        options.Validate();
        var experts = weights.RoutedExperts;
        // A rank holds an expert at most once (the planner's rule), so EP ranks hold at most
        // experts × (EP − 1) extra copies; asking for more places what fits.
        var redundant = (int)Math.Min(options.RedundantExperts, (long)experts * (expertParallelSize - 1));
        // The placement gives every rank the same number of slots per layer, the copies rounded up.
        var perRank = experts == 0 ? 0 : (experts + redundant + expertParallelSize - 1) / expertParallelSize;
        var routed = perRank * weights.PerRoutedExpert;
        var weightBytes = weights.Replicated + routed;
        var reserve = MemoryReserve.Bytes(gpuMemoryBytes, weightBytes, options.KvCacheMemoryFraction);
        var kv = Math.Max(0, gpuMemoryBytes - weightBytes - reserve);
        var perToken = MlaKvCache.ValuesPerToken(config) * options.KvCacheElementBytes;
        return new MemoryPlan(weights.Format, expertParallelSize, gpuMemoryBytes, weights.Replicated, perRank, redundant,
            routed, reserve, kv, perToken, kv / perToken, options.ContextTokens);
    }

    /// <summary>The expert-parallel sizes worth planning: 1, 2, 4, … up to the routed expert count (just 1 for a dense model).</summary>
    public static IReadOnlyList<int> ExpertParallelSizes(DeepSeekConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var sizes = new List<int> { 1 };
        while (sizes[^1] * 2 <= config.NRoutedExperts) sizes.Add(sizes[^1] * 2);
        return sizes;
    }

    /// <summary>The plan of the smallest size of <see cref="ExpertParallelSizes"/> that fits, or null when none does.</summary>
    public static MemoryPlan? Smallest(DeepSeekConfig config, WeightBytes weights, long gpuMemoryBytes, MemoryPlanOptions options) =>
        ExpertParallelSizes(config)
            .Select(size => For(config, weights, gpuMemoryBytes, size, options))
            .FirstOrDefault(plan => plan.Fits);
}
