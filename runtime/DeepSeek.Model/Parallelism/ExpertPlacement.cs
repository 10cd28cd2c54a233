using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;

namespace DeepSeek.Model.Parallelism;

/// <summary>
/// Which ranks of an expert-parallel group hold which routed experts, per MoE layer. Made by
/// <see cref="ExpertPlanner"/>; applied to a built model by <see cref="ExpertParallelism"/>.
/// </summary>
public sealed record ExpertPlacement(int RankCount, IReadOnlyList<LayerPlacement> Layers)
{
    /// <summary>The placement every member starts with (<see cref="Initial"/>).</summary>
    public const long InitialVersion = 1;

    /// <summary>
    /// Numbers the placements a group has run, so every dispatch names the one it was routed by and a
    /// rank refuses work for a placement it does not hold. Rebalancing raises it by one per switch.
    /// </summary>
    public long Version { get; init; } = InitialVersion;

    public LayerPlacement Layer(int layerIndex) =>
        Layers.FirstOrDefault(l => l.LayerIndex == layerIndex)
        ?? throw new ArgumentException($"The placement has no MoE layer {layerIndex}.", nameof(layerIndex));

    /// <summary>
    /// The placement before any load was observed: every expert of every MoE layer of
    /// <paramref name="config"/> expected to get the same number of tokens.
    /// </summary>
    public static ExpertPlacement Initial(DeepSeekConfig config, int ranks, int redundantCopies)
    {
        ArgumentNullException.ThrowIfNull(config);
        var loads = Enumerable.Range(0, config.NumHiddenLayers).Where(config.IsMoeLayer)
            .Select(layer => new ExpertLoad(layer, new long[config.NRoutedExperts]));
        return ExpertPlanner.Plan([.. loads], ranks, redundantCopies);
    }
}

/// <summary>
/// One MoE layer's placement: the experts each rank holds (ascending, each at most once per rank) and,
/// for each expert, the ranks holding a copy (ascending; copy <c>j</c> is on <c>RanksOf(e)[j]</c>).
/// </summary>
public sealed class LayerPlacement
{
    private readonly int[][] _expertsOfRank;
    private readonly int[][] _ranksOfExpert;

    public LayerPlacement(int layerIndex, int expertCount, IReadOnlyList<IReadOnlyList<int>> expertsOfRank)
    {
        ArgumentNullException.ThrowIfNull(expertsOfRank);
        ArgumentOutOfRangeException.ThrowIfLessThan(expertsOfRank.Count, 1);
        LayerIndex = layerIndex;
        ExpertCount = expertCount;
        _expertsOfRank = [.. expertsOfRank.Select(experts => experts.Order().ToArray())];
        var ranks = Enumerable.Range(0, expertCount).Select(_ => new List<int>()).ToArray();
        for (var rank = 0; rank < _expertsOfRank.Length; rank++)
        {
            var experts = _expertsOfRank[rank];
            for (var i = 0; i < experts.Length; i++)
            {
                if (experts[i] < 0 || experts[i] >= expertCount)
                    throw new ArgumentException($"Layer {layerIndex}: rank {rank} holds expert {experts[i]}, outside 0..{expertCount - 1}.", nameof(expertsOfRank));
                if (i > 0 && experts[i] == experts[i - 1])
                    throw new ArgumentException($"Layer {layerIndex}: rank {rank} holds expert {experts[i]} twice.", nameof(expertsOfRank));
                ranks[experts[i]].Add(rank);
            }
        }
        var missing = Array.FindIndex(ranks, r => r.Count == 0);
        if (missing >= 0) throw new ArgumentException($"Layer {layerIndex}: no rank holds expert {missing}.", nameof(expertsOfRank));
        _ranksOfExpert = [.. ranks.Select(r => r.ToArray())];
    }

    public int LayerIndex { get; }

    public int ExpertCount { get; }

    public int RankCount => _expertsOfRank.Length;

    public IReadOnlyList<int> ExpertsOn(int rank) => _expertsOfRank[rank];

    public IReadOnlyList<int> RanksOf(int expert) => _ranksOfExpert[expert];

    /// <summary>Copies held by all ranks together: the routed experts plus the redundant copies.</summary>
    public int CopyCount => _expertsOfRank.Sum(e => e.Length);

    /// <summary>
    /// The routed (token, expert) picks each rank computes when expert <c>e</c> receives
    /// <paramref name="tokensPerExpert"/>[e] picks: an expert's picks split between its copies as
    /// evenly as integers allow, the first copies taking one more (what the sharded forward does).
    /// </summary>
    public long[] TokensPerRank(IReadOnlyList<long> tokensPerExpert)
    {
        ArgumentNullException.ThrowIfNull(tokensPerExpert);
        if (tokensPerExpert.Count != ExpertCount)
            throw new ArgumentException($"Layer {LayerIndex} has {ExpertCount} experts; {tokensPerExpert.Count} counts were given.", nameof(tokensPerExpert));
        var perRank = new long[RankCount];
        for (var expert = 0; expert < ExpertCount; expert++)
        {
            var copies = _ranksOfExpert[expert];
            for (var copy = 0; copy < copies.Length; copy++)
                perRank[copies[copy]] += CopyShare(tokensPerExpert[expert], copies.Length, copy);
        }
        return perRank;
    }

    /// <summary>Max over mean of <see cref="TokensPerRank"/>: what <c>deepseek_expert_load_imbalance_ratio</c> reports.</summary>
    public double ImbalanceRatio(IReadOnlyList<long> tokensPerExpert) => ExpertLoad.ImbalanceRatio(TokensPerRank(tokensPerExpert));

    /// <summary>Copy <paramref name="copy"/>'s share of <paramref name="tokens"/> split over <paramref name="copies"/> copies: every copies-th pick.</summary>
    internal static long CopyShare(long tokens, int copies, int copy) => (tokens / copies) + (copy < tokens % copies ? 1 : 0);
}
