namespace DeepSeek.Runtime.Experts;

/// <summary>What the leader last heard from one rank.</summary>
/// <param name="Rank">The rank (1 … world size − 1; the leader does not track itself).</param>
/// <param name="Address">Where it listens, for messages a person reads.</param>
/// <param name="Ready">It answered Status with ready = true and the group's fingerprint.</param>
/// <param name="Problem">Why it is not ready (connection refused, loading, wrong model …), null when ready.</param>
public sealed record RankState(int Rank, string Address, bool Ready, string? Problem);

/// <summary>The group as the leader's readiness sees it: ready only when every rank is.</summary>
public sealed record GroupReadiness(bool Ready, IReadOnlyList<int> MissingRanks, string Message)
{
    /// <summary>Pure: the leader is ready when every other rank is, and says which are not and why.</summary>
    public static GroupReadiness Of(IReadOnlyCollection<RankState> ranks)
    {
        ArgumentNullException.ThrowIfNull(ranks);
        var missing = ranks.Where(r => !r.Ready).OrderBy(r => r.Rank).ToList();
        if (missing.Count == 0) return new(true, [], $"all {ranks.Count + 1} ranks ready");
        var reasons = string.Join("; ", missing.Select(r => $"rank {r.Rank} ({r.Address}): {r.Problem ?? "not ready"}"));
        return new(false, [.. missing.Select(r => r.Rank)], $"expert-parallel group not ready: {reasons}");
    }
}
