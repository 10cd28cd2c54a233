namespace DeepSeek.Model.Experts;

/// <summary>Which rank holds each routed expert of a layer (index = expert id).</summary>
public sealed record ExpertPlacement(int RankCount, int[] RankOfExpert)
{
    public int ExpertCount => RankOfExpert.Length;

    public bool IsOn(int expert, int rank) => RankOfExpert[expert] == rank;

    public IEnumerable<int> ExpertsOn(int rank) => Enumerable.Range(0, ExpertCount).Where(e => RankOfExpert[e] == rank);

    /// <summary>Every expert on rank 0: a single process computes them all.</summary>
    public static ExpertPlacement AllLocal(int expertCount) => Contiguous(expertCount, 1);

    /// <summary>
    /// Experts split into <paramref name="rankCount"/> contiguous, near-equal ranges (the first
    /// <c>experts mod ranks</c> ranks take one more).
    /// </summary>
    public static ExpertPlacement Contiguous(int expertCount, int rankCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(expertCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(rankCount, 1);
        var ranks = new int[expertCount];
        int baseSize = expertCount / rankCount, extra = expertCount % rankCount, expert = 0;
        for (var rank = 0; rank < rankCount; rank++)
            for (var i = 0; i < baseSize + (rank < extra ? 1 : 0); i++)
                ranks[expert++] = rank;
        return new ExpertPlacement(rankCount, ranks);
    }
}
