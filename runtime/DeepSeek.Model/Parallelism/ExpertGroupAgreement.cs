using DeepSeek.Model.Native;
using static TorchSharp.torch;

namespace DeepSeek.Model.Parallelism;

/// <summary>
/// What the ranks of an NCCL group compare when it forms, before any routed token moves: NCCL moves
/// bytes, so ranks that disagree on the dtype, the hidden size, k or the placement would exchange
/// garbage (or hang on mismatched sizes) instead of failing. Each rank all-gathers its row; every rank
/// sees the same rows and so reaches the same verdict.
/// </summary>
public static class ExpertGroupAgreement
{
    private static readonly string[] Fields = ["placement version", "hidden size", "dtype", "experts per token", "MoE layers", "checkpoint fingerprint"];

    /// <summary>This rank's row.</summary>
    public static long[] Row(long placementVersion, long hiddenSize, ScalarType dtype, int expertsPerToken, int moeLayers, string fingerprint)
    {
        ArgumentNullException.ThrowIfNull(fingerprint);
        // 60 bits of the hex fingerprint: enough to tell two checkpoints apart.
        var hash = Convert.ToInt64(fingerprint.Length > 15 ? fingerprint[..15] : fingerprint.PadLeft(1, '0'), 16);
        return [placementVersion, hiddenSize, (long)dtype, expertsPerToken, moeLayers, hash];
    }

    /// <summary>Null when every rank's row equals the leader's; else which ranks differ, and in what.</summary>
    public static string? Check(IReadOnlyList<IReadOnlyList<long>> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0) return "no rank took part";
        var problems = new List<string>();
        for (var rank = 1; rank < rows.Count; rank++)
        {
            var differing = Enumerable.Range(0, Fields.Length).Where(f => rows[rank][f] != rows[0][f])
                .Select(f => $"{Fields[f]} {rows[rank][f]} (leader {rows[0][f]})").ToList();
            if (differing.Count > 0) problems.Add($"rank {rank}: {string.Join(", ", differing)}");
        }
        return problems.Count == 0 ? null : $"the ranks disagree: {string.Join("; ", problems)}";
    }

    /// <summary>All-gathers <paramref name="row"/> over <paramref name="group"/> (the group's first collective) and checks the rows.</summary>
    public static string? Exchange(IProcessGroup group, long[] row, Device device, TimeSpan wait)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(row);
        using var scope = NewDisposeScope();
        var mine = tensor(row, device: device);
        var all = zeros([group.WorldSize * (long)row.Length], ScalarType.Int64, device);
        group.AllGather(all, mine, wait);
        var values = all.cpu().data<long>().ToArray();
        return Check([.. Enumerable.Range(0, group.WorldSize).Select(r => (IReadOnlyList<long>)values[(r * row.Length)..((r + 1) * row.Length)])]);
    }
}
