namespace DeepSeek.Model.Experts;

/// <summary>
/// Estimates the time of each <see cref="ExpertComputePath"/> for one MoE layer of T tokens as
/// <c>max(bytes / bandwidth, FLOPs / throughput) + launches · launch cost (+ sync)</c>, and derives
/// the <see cref="ExpertPathThresholds"/>. With <c>B</c> = bytes of one expert (gate, up, down),
/// <c>P = T·k</c> (token, slot) pairs and <c>D</c> the expected distinct experts of T uniformly
/// routed tokens:
/// <list type="bullet">
/// <item>Gather: 3·P·B bytes (read, copy written, copy read), exact FLOPs, ~10 launches.</item>
/// <item>Dense: E·B bytes, E/k times the FLOPs, ~9 launches; temporaries T·E·(3·inter + hidden) elements.</item>
/// <item>Sorted: D·B bytes, exact FLOPs, ~8 + 4·D launches and one host synchronisation.</item>
/// </list>
/// On an H100 for DeepSeek-V2-Lite in bf16 (E = 64, k = 6, B ≈ 17 MB) this gives Gather for
/// T ≤ 3, Dense up to the temporaries cap (T ≤ 334), Sorted beyond; on a CPU, where matmuls are
/// memory-bound and launches cheap, Sorted everywhere.
/// </summary>
public static class ExpertCostModel
{
    private const double GatherLaunches = 10;
    private const double DenseLaunches = 9;
    private const double SortedFixedLaunches = 8;
    private const double SortedLaunchesPerExpert = 4;

    /// <summary>Largest token count searched; beyond it nothing changes (Sorted).</summary>
    private const long SearchLimit = 1 << 16;

    public static double Seconds(ExpertComputePath path, long tokens, MoeShape shape, ExpertDeviceProfile device)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(device);
        double pairs = (double)tokens * shape.ExpertsPerToken;
        double expertBytes = 3.0 * shape.IntermediateSize * shape.HiddenSize * shape.ElementSize;
        double flopsPerPair = 2.0 * 3 * shape.IntermediateSize * shape.HiddenSize;
        var flopRate = device.FlopsPerSecond(shape.ElementSize);
        double Time(double bytes, double flops, double launches, double syncs) =>
            Math.Max(bytes / device.BytesPerSecond, flops / flopRate) + (launches * device.SecondsPerLaunch) + (syncs * device.SecondsPerSync);
        switch (path)
        {
            case ExpertComputePath.Gather:
                return Time(3 * pairs * expertBytes, pairs * flopsPerPair, GatherLaunches, 0);
            case ExpertComputePath.Dense:
                return Time(shape.LocalExperts * expertBytes, tokens * shape.LocalExperts * flopsPerPair, DenseLaunches, 0);
            default:
                var distinct = Math.Min(pairs, shape.LocalExperts * (1 - Math.Pow(1 - ((double)shape.ExpertsPerToken / shape.LocalExperts), tokens)));
                return Time(distinct * expertBytes, pairs * flopsPerPair, SortedFixedLaunches + (SortedLaunchesPerExpert * distinct), 1);
        }
    }

    /// <summary>Bytes of the dense path's temporaries: gate/up output, activation and per-expert down output.</summary>
    public static double DenseTemporaryBytes(long tokens, MoeShape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return (double)tokens * shape.LocalExperts * ((3.0 * shape.IntermediateSize) + shape.HiddenSize) * shape.ElementSize;
    }

    /// <summary>
    /// Gather while it is the cheapest path from T = 1 up; then Dense while it beats Sorted and its
    /// temporaries fit the device's cap; Sorted beyond.
    /// </summary>
    public static ExpertPathThresholds Thresholds(MoeShape shape, ExpertDeviceProfile device)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(device);
        long tokens = 1;
        while (tokens <= SearchLimit
               && Seconds(ExpertComputePath.Gather, tokens, shape, device) <= Seconds(ExpertComputePath.Dense, tokens, shape, device)
               && Seconds(ExpertComputePath.Gather, tokens, shape, device) <= Seconds(ExpertComputePath.Sorted, tokens, shape, device))
            tokens++;
        var maxGather = tokens - 1;
        while (tokens <= SearchLimit
               && DenseTemporaryBytes(tokens, shape) <= device.MaxDenseTemporaryBytes
               && Seconds(ExpertComputePath.Dense, tokens, shape, device) <= Seconds(ExpertComputePath.Sorted, tokens, shape, device))
            tokens++;
        return new ExpertPathThresholds(maxGather, tokens - 1);
    }
}
