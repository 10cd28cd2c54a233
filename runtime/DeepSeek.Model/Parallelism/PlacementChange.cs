namespace DeepSeek.Model.Parallelism;

/// <summary>
/// What one rank does in one MoE layer to go from the placement it runs to the next: the experts it
/// reads from the checkpoint (newly assigned), the ones it keeps (copied from its current stacks) and
/// the ones it frees once the next placement is in force. All ascending.
/// </summary>
public sealed record LayerMove(int LayerIndex, IReadOnlyList<int> Load, IReadOnlyList<int> Keep, IReadOnlyList<int> Free)
{
    public bool IsEmpty => Load.Count == 0 && Free.Count == 0;
}

/// <summary>Pure functions over two placements of one group: who moves what, and labelling ranks so that little moves.</summary>
public static class PlacementChange
{
    /// <summary>Per MoE layer of <paramref name="next"/>, what <paramref name="rank"/> loads, keeps and frees.</summary>
    /// <exception cref="ArgumentException">The placements are of different groups or layers.</exception>
    public static IReadOnlyList<LayerMove> For(ExpertPlacement current, ExpertPlacement next, int rank)
    {
        CheckComparable(current, next);
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, next.RankCount);
        return [.. next.Layers.Select(layer => ForLayer(current.Layer(layer.LayerIndex), layer, rank))];
    }

    /// <summary>What <paramref name="rank"/> loads, keeps and frees in one layer.</summary>
    public static LayerMove ForLayer(LayerPlacement current, LayerPlacement next, int rank)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(next);
        if (current.LayerIndex != next.LayerIndex || current.ExpertCount != next.ExpertCount || current.RankCount != next.RankCount)
            throw new ArgumentException($"Layer {current.LayerIndex} ({current.ExpertCount} experts on {current.RankCount} ranks) and layer {next.LayerIndex} ({next.ExpertCount} on {next.RankCount}) are not two placements of one layer.", nameof(next));
        var before = current.ExpertsOn(rank);
        var after = next.ExpertsOn(rank);
        return new LayerMove(next.LayerIndex, [.. after.Except(before)], [.. after.Intersect(before)], [.. before.Except(after)]);
    }

    /// <summary>Experts read from the checkpoint by all ranks together: the cost of a switch.</summary>
    public static int ExpertsLoaded(ExpertPlacement current, ExpertPlacement next) =>
        Enumerable.Range(0, next.RankCount).Sum(rank => For(current, next, rank).Sum(m => m.Load.Count));

    /// <summary>
    /// <paramref name="next"/> with each layer's ranks relabelled so that ranks keep as many of the
    /// experts they hold in <paramref name="current"/> as possible (greedy: the pair of a new expert set
    /// and a rank sharing the most experts first). Balance is unchanged (ranks are interchangeable
    /// within a layer); only fewer experts move.
    /// </summary>
    public static ExpertPlacement AlignRanks(ExpertPlacement current, ExpertPlacement next)
    {
        CheckComparable(current, next);
        var ranks = next.RankCount;
        var layers = next.Layers.Select(layer =>
        {
            var before = current.Layer(layer.LayerIndex);
            var overlaps = new List<(int Overlap, int Set, int Rank)>();
            for (var set = 0; set < ranks; set++)
                for (var rank = 0; rank < ranks; rank++)
                    overlaps.Add((layer.ExpertsOn(set).Intersect(before.ExpertsOn(rank)).Count(), set, rank));
            var rankOfSet = Enumerable.Repeat(-1, ranks).ToArray();
            var taken = new bool[ranks];
            // Most shared experts first; ties keep a set where it was, then lower labels, so it is deterministic.
            foreach (var (_, set, rank) in overlaps.OrderByDescending(o => o.Overlap).ThenBy(o => o.Set == o.Rank ? 0 : 1).ThenBy(o => o.Set).ThenBy(o => o.Rank))
            {
                if (rankOfSet[set] >= 0 || taken[rank]) continue;
                rankOfSet[set] = rank;
                taken[rank] = true;
            }
            var expertsOfRank = new IReadOnlyList<int>[ranks];
            for (var set = 0; set < ranks; set++) expertsOfRank[rankOfSet[set]] = layer.ExpertsOn(set);
            return new LayerPlacement(layer.LayerIndex, layer.ExpertCount, expertsOfRank);
        });
        return next with { Layers = [.. layers] };
    }

    private static void CheckComparable(ExpertPlacement current, ExpertPlacement next)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(next);
        if (current.RankCount != next.RankCount)
            throw new ArgumentException($"The placements span {current.RankCount} and {next.RankCount} ranks; a group keeps its size.", nameof(next));
        var layers = current.Layers.Select(l => (l.LayerIndex, l.ExpertCount)).Order().ToList();
        if (!layers.SequenceEqual(next.Layers.Select(l => (l.LayerIndex, l.ExpertCount)).Order()))
            throw new ArgumentException("The placements cover different MoE layers or expert counts.", nameof(next));
    }
}
