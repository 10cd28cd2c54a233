namespace DeepSeek.Model.Experts;

/// <summary>
/// Token-count bounds of the compute paths: <see cref="ExpertComputePath.Gather"/> up to
/// <paramref name="MaxGatherTokens"/>, <see cref="ExpertComputePath.Dense"/> up to
/// <paramref name="MaxDenseTokens"/>, a large-batch path beyond. The token count is a shape, known
/// on the host without a device synchronisation. The large-batch path is
/// <paramref name="LargeBatchPath"/> when set (<see cref="ExpertComputePath.Sorted"/> or
/// <see cref="ExpertComputePath.Grouped"/>); when null it is chosen per batch from the per-expert
/// counts, which both large-batch paths read anyway (<see cref="ExpertCostModel.LargeBatchPath"/>).
/// </summary>
public sealed record ExpertPathThresholds(long MaxGatherTokens, long MaxDenseTokens, ExpertComputePath? LargeBatchPath = null)
{
    /// <summary>Always one path (tests, comparisons).</summary>
    public static ExpertPathThresholds Only(ExpertComputePath path) => path switch
    {
        ExpertComputePath.Gather => new(long.MaxValue, long.MaxValue),
        ExpertComputePath.Dense => new(0, long.MaxValue),
        _ => new(0, 0, path),
    };

    /// <returns>The path for <paramref name="tokens"/> tokens, or null: a large-batch path decided from the counts.</returns>
    public ExpertComputePath? Choose(long tokens) =>
        tokens <= MaxGatherTokens ? ExpertComputePath.Gather
        : tokens <= MaxDenseTokens ? ExpertComputePath.Dense
        : LargeBatchPath;
}
