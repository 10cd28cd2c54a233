using DeepSeek.Model.Experts;

namespace DeepSeek.Model.Parallelism;

/// <summary>
/// Decides which ranks hold which routed experts so that every rank expects about the same number
/// of routed tokens (a pure function of the expert count, the ranks, the redundant copies and the
/// observed load). Per layer:
/// <list type="number">
/// <item><b>Replicate.</b> Each redundant copy goes to the expert whose tokens per copy are highest
/// (ties: lowest id); an expert has at most one copy per rank. A replicated expert's tokens are
/// split evenly between its copies.</item>
/// <item><b>Pack.</b> Copies, heaviest first, each go to the rank with the fewest expected tokens
/// that has a free slot and no copy of that expert yet (longest-processing-time first). A rank has
/// ⌈copies / ranks⌉ slots, so counts may be uneven (10 experts on 3 ranks: 4, 3, 3 or 4, 4, 2 when
/// one expert is hot) but no rank holds more experts than an even split would give it.</item>
/// <item><b>Improve.</b> While moving one copy off the most loaded rank, or swapping it for a lighter
/// copy of another rank, lowers that rank's load without raising the other's above it, do the best
/// such move (bounded).</item>
/// </list>
/// With no observed load (all zero) every expert is taken as equally loaded.
/// </summary>
public static class ExpertPlanner
{
    private const double Epsilon = 1e-9;

    /// <summary>
    /// A placement of every layer in <paramref name="loads"/> (one entry per MoE layer, counts per
    /// expert). Where a layer leaves a choice between equally loaded ranks, the rank holding fewer
    /// copies in the layers before gets the copy, so uneven counts do not pile up on one rank's memory.
    /// </summary>
    public static ExpertPlacement Plan(IReadOnlyList<ExpertLoad> loads, int ranks, int redundantCopies)
    {
        ArgumentNullException.ThrowIfNull(loads);
        var copiesHeld = new long[Math.Max(ranks, 0)];
        var layers = new List<LayerPlacement>();
        foreach (var load in loads)
        {
            var layer = PlanLayer(load.LayerIndex, load.TokensPerExpert, ranks, redundantCopies, copiesHeld);
            for (var rank = 0; rank < ranks; rank++) copiesHeld[rank] += layer.ExpertsOn(rank).Count;
            layers.Add(layer);
        }
        return new ExpertPlacement(ranks, layers);
    }

    /// <param name="layerIndex">The MoE layer.</param>
    /// <param name="tokensPerExpert">Observed picks per expert (all zero: none observed yet).</param>
    /// <param name="ranks">Ranks of the group.</param>
    /// <param name="redundantCopies">Extra copies beyond one per expert.</param>
    /// <param name="copiesHeldBefore">Copies each rank holds in other layers; breaks ties between equally loaded ranks.</param>
    public static LayerPlacement PlanLayer(int layerIndex, IReadOnlyList<long> tokensPerExpert, int ranks, int redundantCopies, IReadOnlyList<long>? copiesHeldBefore = null)
    {
        ArgumentNullException.ThrowIfNull(tokensPerExpert);
        ArgumentOutOfRangeException.ThrowIfLessThan(ranks, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(redundantCopies);
        var experts = tokensPerExpert.Count;
        ArgumentOutOfRangeException.ThrowIfLessThan(experts, 1, nameof(tokensPerExpert));
        if (tokensPerExpert.Any(t => t < 0)) throw new ArgumentException("Token counts cannot be negative.", nameof(tokensPerExpert));
        if (redundantCopies > (long)experts * (ranks - 1))
            throw new ArgumentException($"{redundantCopies} redundant copies of {experts} experts need more than one copy of an expert per rank on {ranks} ranks.", nameof(redundantCopies));

        var observed = tokensPerExpert.Any(t => t > 0);
        var load = tokensPerExpert.Select(t => observed ? (double)t : 1.0).ToArray();
        var copies = Replicate(load, ranks, redundantCopies);

        // One item per copy, carrying its share of the expert's tokens; heaviest first, then by id.
        var items = Enumerable.Range(0, experts)
            .SelectMany(e => Enumerable.Repeat(new Copy(e, load[e] / copies[e]), copies[e]))
            .OrderByDescending(c => c.Share).ThenBy(c => c.Expert).ToList();
        var slots = (items.Count + ranks - 1) / ranks;
        var held = Enumerable.Range(0, ranks).Select(_ => new List<Copy>()).ToArray();
        var rankLoad = new double[ranks];
        var before = copiesHeldBefore ?? new long[ranks];
        if (before.Count != ranks) throw new ArgumentException($"{before.Count} prior copy counts for {ranks} ranks.", nameof(copiesHeldBefore));
        foreach (var item in items)
        {
            var rank = Lightest(ranks, r => held[r].Count < slots && !Holds(held[r], item.Expert), rankLoad, held, before);
            // Every rank with a free slot already holds this expert: exceed the slots rather than
            // hold one expert twice (a copy per rank is at most one by construction, so one exists).
            if (rank < 0) rank = Lightest(ranks, r => !Holds(held[r], item.Expert), rankLoad, held, before);
            held[rank].Add(item);
            rankLoad[rank] += item.Share;
        }
        Improve(held, rankLoad, slots, maxSteps: 4 * items.Count);
        return new LayerPlacement(layerIndex, experts, [.. held.Select(h => (IReadOnlyList<int>)[.. h.Select(c => c.Expert)])]);
    }

    /// <summary>Copies per expert: each redundant copy to the expert with the most tokens per copy.</summary>
    private static int[] Replicate(double[] load, int ranks, int redundantCopies)
    {
        var copies = Enumerable.Repeat(1, load.Length).ToArray();
        for (var extra = 0; extra < redundantCopies; extra++)
        {
            var hottest = -1;
            for (var e = 0; e < load.Length; e++)
                if (copies[e] < ranks && (hottest < 0 || load[e] / copies[e] > (load[hottest] / copies[hottest]) + Epsilon))
                    hottest = e;
            copies[hottest]++;
        }
        return copies;
    }

    /// <summary>
    /// The eligible rank with the least expected load (ties: fewer copies in this layer, then fewer
    /// in the layers before, then lower rank), or −1.
    /// </summary>
    private static int Lightest(int ranks, Func<int, bool> eligible, double[] rankLoad, List<Copy>[] held, IReadOnlyList<long> before)
    {
        var best = -1;
        for (var r = 0; r < ranks; r++)
        {
            if (!eligible(r)) continue;
            if (best < 0 || rankLoad[r] < rankLoad[best] - Epsilon) best = r;
            else if (Math.Abs(rankLoad[r] - rankLoad[best]) <= Epsilon
                     && (held[r].Count, before[r]).CompareTo((held[best].Count, before[best])) < 0)
                best = r;
        }
        return best;
    }

    /// <summary>
    /// Local search on the most loaded rank: the move or swap with another rank that lowers the
    /// larger of the two loads the most, until none lowers it. Each step lowers the sorted load vector
    /// lexicographically, so it ends; <paramref name="maxSteps"/> bounds it anyway.
    /// </summary>
    private static void Improve(List<Copy>[] held, double[] rankLoad, int slots, int maxSteps)
    {
        for (var step = 0; step < maxSteps; step++)
        {
            var heaviest = Array.IndexOf(rankLoad, rankLoad.Max());
            var (bestMax, bestRank, bestOut, bestIn) = (rankLoad[heaviest] - Epsilon, -1, -1, -1);
            for (var other = 0; other < held.Length; other++)
            {
                if (other == heaviest) continue;
                for (var a = 0; a < held[heaviest].Count; a++)
                {
                    var outgoing = held[heaviest][a];
                    if (Holds(held[other], outgoing.Expert)) continue;
                    if (held[other].Count < slots)
                    {
                        var moved = Math.Max(rankLoad[heaviest] - outgoing.Share, rankLoad[other] + outgoing.Share);
                        if (moved < bestMax) (bestMax, bestRank, bestOut, bestIn) = (moved, other, a, -1);
                    }
                    for (var b = 0; b < held[other].Count; b++)
                    {
                        var incoming = held[other][b];
                        if (incoming.Share >= outgoing.Share || Holds(held[heaviest], incoming.Expert)) continue;
                        var delta = outgoing.Share - incoming.Share;
                        var swapped = Math.Max(rankLoad[heaviest] - delta, rankLoad[other] + delta);
                        if (swapped < bestMax) (bestMax, bestRank, bestOut, bestIn) = (swapped, other, a, b);
                    }
                }
            }
            if (bestRank < 0) return;
            var copy = held[heaviest][bestOut];
            held[heaviest].RemoveAt(bestOut);
            held[bestRank].Add(copy);
            rankLoad[heaviest] -= copy.Share;
            rankLoad[bestRank] += copy.Share;
            if (bestIn >= 0)
            {
                var back = held[bestRank][bestIn];
                held[bestRank].RemoveAt(bestIn);
                held[heaviest].Add(back);
                rankLoad[bestRank] -= back.Share;
                rankLoad[heaviest] += back.Share;
            }
        }
    }

    private static bool Holds(List<Copy> copies, int expert) => copies.Exists(c => c.Expert == expert);

    private sealed record Copy(int Expert, double Share);
}
