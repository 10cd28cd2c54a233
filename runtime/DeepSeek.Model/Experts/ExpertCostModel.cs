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
/// <item>Grouped: E·B bytes, the FLOPs of E·capacity rows, ~13 + 9 per expert chunk launches and
/// one host synchronisation; temporaries capacity·(3·inter + 2·hidden) elements per expert, chunked
/// to the device's cap.</item>
/// </list>
/// Sorted and Grouped both read the counts, so the choice between them is made per batch from the
/// actual counts (<see cref="LargeBatchPath"/>): skewed routing makes the capacity, the largest
/// count, far larger than the mean. For the token thresholds Grouped is estimated with the capacity
/// of uniform routing. On an H100 for DeepSeek-V2-Lite in bf16 (E = 64, k = 6, B ≈ 17 MB) this
/// gives Gather for T ≤ 3, Dense up to T = 201, then Grouped for balanced routing; on a CPU, where
/// matmuls are memory-bound and launches cheap, Sorted for real model sizes.
/// </summary>
public static class ExpertCostModel
{
    private const double GatherLaunches = 10;
    private const double DenseLaunches = 9;
    private const double SortedFixedLaunches = 8;
    private const double SortedLaunchesPerExpert = 4;
    private const double GroupedFixedLaunches = 13;
    private const double GroupedLaunchesPerChunk = 9;

    /// <summary>Grouped capacities are rounded up to this many rows, so nearby batches share shapes.</summary>
    public const long CapacityMultiple = 16;

    /// <summary>Largest token count searched; beyond it nothing changes (the large-batch paths).</summary>
    private const long SearchLimit = 1 << 16;

    public static double Seconds(ExpertComputePath path, long tokens, MoeShape shape, ExpertDeviceProfile device)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(device);
        double pairs = (double)tokens * shape.ExpertsPerToken;
        switch (path)
        {
            case ExpertComputePath.Gather:
                return Time(3 * pairs * ExpertBytes(shape), pairs * FlopsPerPair(shape), GatherLaunches, 0, shape, device);
            case ExpertComputePath.Dense:
                return Time(shape.LocalExperts * ExpertBytes(shape), tokens * shape.LocalExperts * FlopsPerPair(shape), DenseLaunches, 0, shape, device);
            case ExpertComputePath.Grouped:
                return GroupedSeconds(ExpectedCapacity(pairs, shape.LocalExperts), shape, device);
            default:
                var distinct = Math.Min(pairs, shape.LocalExperts * (1 - Math.Pow(1 - ((double)shape.ExpertsPerToken / shape.LocalExperts), tokens)));
                return SortedSeconds(pairs, distinct, shape, device);
        }
    }

    /// <summary>
    /// Sorted or Grouped for a batch whose (token, slot) pairs per local expert are
    /// <paramref name="tokensPerExpert"/> (read on the host): Grouped when its padded GEMMs over the
    /// actual capacity cost less than Sorted's per-expert launches.
    /// </summary>
    public static ExpertComputePath LargeBatchPath(IReadOnlyList<long> tokensPerExpert, MoeShape shape, ExpertDeviceProfile device)
    {
        ArgumentNullException.ThrowIfNull(tokensPerExpert);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(device);
        if (tokensPerExpert.Count == 0) return ExpertComputePath.Sorted;
        double pairs = tokensPerExpert.Sum(), distinct = tokensPerExpert.Count(c => c > 0);
        var grouped = GroupedSeconds(GroupedCapacity(tokensPerExpert.Max()), shape, device);
        return grouped < SortedSeconds(pairs, distinct, shape, device) ? ExpertComputePath.Grouped : ExpertComputePath.Sorted;
    }

    /// <summary>Rows per expert of the grouped path's padded buffer: the largest count, rounded up to <see cref="CapacityMultiple"/>.</summary>
    public static long GroupedCapacity(long largestCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(largestCount);
        return (largestCount + CapacityMultiple - 1) / CapacityMultiple * CapacityMultiple;
    }

    /// <summary>
    /// Experts computed together by the grouped path: as many as keep the temporaries (padded input,
    /// gate/up, activation, down output) within the device's cap, at least one.
    /// </summary>
    public static int GroupedChunkExperts(long capacity, MoeShape shape, ExpertDeviceProfile device)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(device);
        var perExpert = capacity * ((2.0 * shape.HiddenSize) + (3.0 * shape.IntermediateSize)) * shape.ElementSize;
        var fit = perExpert <= 0 ? shape.LocalExperts : Math.Floor(device.MaxGroupedTemporaryBytes / perExpert);
        return (int)Math.Clamp(fit, 1, Math.Max(1, shape.LocalExperts));
    }

    /// <summary>Bytes of the dense path's temporaries: gate/up output, activation and per-expert down output.</summary>
    public static double DenseTemporaryBytes(long tokens, MoeShape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return (double)tokens * shape.LocalExperts * ((3.0 * shape.IntermediateSize) + shape.HiddenSize) * shape.ElementSize;
    }

    /// <summary>
    /// Gather while it is the cheapest path from T = 1 up; then Dense while it beats the cheaper
    /// large-batch path and its temporaries fit the device's cap; beyond, Sorted or Grouped chosen
    /// per batch from the counts.
    /// </summary>
    public static ExpertPathThresholds Thresholds(MoeShape shape, ExpertDeviceProfile device)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(device);
        double Large(long tokens) => Math.Min(Seconds(ExpertComputePath.Sorted, tokens, shape, device), Seconds(ExpertComputePath.Grouped, tokens, shape, device));
        long tokens = 1;
        while (tokens <= SearchLimit
               && Seconds(ExpertComputePath.Gather, tokens, shape, device) <= Seconds(ExpertComputePath.Dense, tokens, shape, device)
               && Seconds(ExpertComputePath.Gather, tokens, shape, device) <= Large(tokens))
            tokens++;
        var maxGather = tokens - 1;
        while (tokens <= SearchLimit
               && DenseTemporaryBytes(tokens, shape) <= device.MaxDenseTemporaryBytes
               && Seconds(ExpertComputePath.Dense, tokens, shape, device) <= Large(tokens))
            tokens++;
        return new ExpertPathThresholds(maxGather, tokens - 1);
    }

    private static double ExpertBytes(MoeShape shape) => 3.0 * shape.IntermediateSize * shape.HiddenSize * shape.ElementSize;

    private static double FlopsPerPair(MoeShape shape) => 2.0 * 3 * shape.IntermediateSize * shape.HiddenSize;

    private static double Time(double bytes, double flops, double launches, double syncs, MoeShape shape, ExpertDeviceProfile device) =>
        Math.Max(bytes / device.BytesPerSecond, flops / device.FlopsPerSecond(shape.ElementSize)) + (launches * device.SecondsPerLaunch) + (syncs * device.SecondsPerSync);

    private static double SortedSeconds(double pairs, double distinct, MoeShape shape, ExpertDeviceProfile device) =>
        Time(distinct * ExpertBytes(shape), pairs * FlopsPerPair(shape), SortedFixedLaunches + (SortedLaunchesPerExpert * distinct), 1, shape, device);

    private static double GroupedSeconds(long capacity, MoeShape shape, ExpertDeviceProfile device)
    {
        var chunks = Math.Ceiling((double)shape.LocalExperts / GroupedChunkExperts(capacity, shape, device));
        return Time(shape.LocalExperts * ExpertBytes(shape), (double)shape.LocalExperts * capacity * FlopsPerPair(shape),
            GroupedFixedLaunches + (GroupedLaunchesPerChunk * chunks), 1, shape, device);
    }

    /// <summary>
    /// The largest of E uniformly routed experts' counts, roughly: mean + √(2·mean·ln E) (the
    /// maximum of E near-Poisson counts), rounded like a real capacity.
    /// </summary>
    private static long ExpectedCapacity(double pairs, int experts)
    {
        var mean = pairs / Math.Max(1, experts);
        return GroupedCapacity((long)Math.Ceiling(Math.Min(pairs, mean + Math.Sqrt(2 * mean * Math.Log(Math.Max(1, experts))))));
    }
}
