using System.Globalization;
using DeepSeek.Model.Experts;

namespace DeepSeek.Model.Parallelism;

/// <summary>The outcome of one look at the observed load: the placement to switch to, or null to keep the one in force, and why.</summary>
/// <param name="Next">The placement to switch to, or null to keep the one in force.</param>
/// <param name="Reason">Why, for the log.</param>
/// <param name="Judged">False when too few picks were observed to judge: keep observing rather than start over.</param>
public sealed record RebalanceDecision(ExpertPlacement? Next, string Reason, bool Judged = true)
{
    public bool Switches => Next is not null;
}

/// <summary>
/// When to rebalance and to what (pure): the leader's rebalancer calls it every interval with the
/// routed picks observed, older intervals weighing half as much per interval (<see cref="Accumulate"/>),
/// so one unusual interval does not move experts back and forth.
/// <list type="bullet">
/// <item>Too few picks in a layer say little about its load: below <see cref="MinPicksPerExpert"/> per
/// expert the layer is not judged (and with no layer judged nothing changes).</item>
/// <item>A layer is re-planned with <see cref="ExpertPlanner"/> from its observed picks, its ranks
/// relabelled so that experts stay where they are (<see cref="PlacementChange.AlignRanks"/>). It
/// switches only when its imbalance is at least <see cref="MinImbalance"/> and the new placement
/// lowers the most loaded rank's picks (the layer's step time) by at least <see cref="MinGain"/>:
/// moving experts costs checkpoint reads and a pause between steps, so noise must not cause moves.</item>
/// <item>Layers that do not gain keep their placement; if none gains the placement stays, version and all.</item>
/// </list>
/// </summary>
public static class RebalancePolicy
{
    /// <summary>Observed picks per expert of a layer below which its load is not judged.</summary>
    public const int MinPicksPerExpert = 4;

    /// <summary>Relative drop of the most loaded rank's picks a layer must gain to move experts.</summary>
    public const double MinGain = 0.1;

    /// <summary>
    /// A layer whose busiest rank gets less than this over the mean is left alone (uneven expert counts
    /// alone give 1.125 for 8 experts on 3 ranks under even load).
    /// </summary>
    public const double MinImbalance = 1.2;

    /// <summary>
    /// The load to judge: <paramref name="history"/> (what was judged last time) halved, plus the picks
    /// of the interval just ended. An expert's weight halves with every interval it is not picked.
    /// </summary>
    public static IReadOnlyList<ExpertLoad> Accumulate(IReadOnlyList<ExpertLoad>? history, IReadOnlyList<ExpertLoad> interval)
    {
        ArgumentNullException.ThrowIfNull(interval);
        var before = (history ?? []).ToDictionary(l => l.LayerIndex);
        return [.. interval.Select(load =>
        {
            var old = before.TryGetValue(load.LayerIndex, out var h) && h.TokensPerExpert.Length == load.TokensPerExpert.Length ? h.TokensPerExpert : null;
            return new ExpertLoad(load.LayerIndex, [.. load.TokensPerExpert.Select((picks, e) => picks + ((old?[e] ?? 0) / 2))]);
        })];
    }

    /// <summary>
    /// A data-parallel group's picks: each rank observes only what its own forwards routed, so the
    /// group's load is the per-expert sum over its ranks (a rank that observed nothing adds nothing).
    /// </summary>
    public static IReadOnlyList<ExpertLoad> Sum(IEnumerable<IReadOnlyList<ExpertLoad>> ranks)
    {
        ArgumentNullException.ThrowIfNull(ranks);
        var sums = new SortedDictionary<int, long[]>();
        foreach (var load in ranks.SelectMany(r => r))
        {
            if (!sums.TryGetValue(load.LayerIndex, out var sum)) sums[load.LayerIndex] = sum = new long[load.TokensPerExpert.Length];
            if (sum.Length != load.TokensPerExpert.Length)
                throw new ArgumentException($"Layer {load.LayerIndex}'s loads count {sum.Length} and {load.TokensPerExpert.Length} experts.", nameof(ranks));
            for (var e = 0; e < sum.Length; e++) sum[e] += load.TokensPerExpert[e];
        }
        return [.. sums.Select(s => new ExpertLoad(s.Key, s.Value))];
    }

    /// <param name="current">The placement in force.</param>
    /// <param name="observed">Routed picks per expert per MoE layer since the last look (the input of <c>deepseek_expert_tokens_total</c>).</param>
    /// <param name="redundantCopies">Extra copies per layer, as the group was started with.</param>
    public static RebalanceDecision Decide(ExpertPlacement current, IReadOnlyList<ExpertLoad> observed, int redundantCopies)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(observed);
        if (current.RankCount == 1) return new(null, "one rank holds every expert", Judged: false);
        var byLayer = observed.ToDictionary(l => l.LayerIndex);
        var layers = new List<LayerPlacement>();
        var notes = new List<string>();
        var judged = 0;
        var copiesHeld = new long[current.RankCount];
        foreach (var layer in current.Layers)
        {
            var kept = layer;
            if (byLayer.TryGetValue(layer.LayerIndex, out var load) && load.TokensPerExpert.Length == layer.ExpertCount
                && load.TokensPerExpert.Sum() >= (long)MinPicksPerExpert * layer.ExpertCount)
            {
                judged++;
                var planned = ExpertPlanner.PlanLayer(layer.LayerIndex, load.TokensPerExpert, current.RankCount, redundantCopies, copiesHeld);
                var before = layer.TokensPerRank(load.TokensPerExpert).Max();
                var after = planned.TokensPerRank(load.TokensPerExpert).Max();
                if (layer.ImbalanceRatio(load.TokensPerExpert) >= MinImbalance && after <= before * (1 - MinGain))
                {
                    kept = PlacementChange.AlignRanks(new ExpertPlacement(current.RankCount, [layer]), new ExpertPlacement(current.RankCount, [planned])).Layers[0];
                    notes.Add(string.Create(CultureInfo.InvariantCulture,
                        $"layer {layer.LayerIndex}: imbalance {layer.ImbalanceRatio(load.TokensPerExpert):0.00} → {planned.ImbalanceRatio(load.TokensPerExpert):0.00}"));
                }
            }
            for (var rank = 0; rank < current.RankCount; rank++) copiesHeld[rank] += kept.ExpertsOn(rank).Count;
            layers.Add(kept);
        }
        if (judged == 0) return new(null, $"too few routed picks observed (under {MinPicksPerExpert} per expert in every MoE layer)", Judged: false);
        if (notes.Count == 0) return new(null, $"no layer is imbalanced by {MinImbalance} or more with a placement whose busiest rank would get {MinGain:P0} fewer picks");
        return new(new ExpertPlacement(current.RankCount, layers) { Version = current.Version + 1 }, string.Join("; ", notes));
    }

    /// <summary>Whether a look is due: <paramref name="interval"/> after the last one (or after start); never for a zero interval.</summary>
    public static bool IsDue(DateTimeOffset lastLook, DateTimeOffset now, TimeSpan interval) =>
        interval > TimeSpan.Zero && now - lastLook >= interval;
}
