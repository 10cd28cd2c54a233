namespace DeepSeek.Model.Experts;

/// <summary>
/// Token-count bounds of the compute paths: <see cref="ExpertComputePath.Gather"/> up to
/// <paramref name="MaxGatherTokens"/>, <see cref="ExpertComputePath.Dense"/> up to
/// <paramref name="MaxDenseTokens"/>, <see cref="ExpertComputePath.Sorted"/> beyond. The token
/// count is a shape, known on the host without a device synchronisation.
/// </summary>
public sealed record ExpertPathThresholds(long MaxGatherTokens, long MaxDenseTokens)
{
    /// <summary>Always one path (tests, comparisons).</summary>
    public static ExpertPathThresholds Only(ExpertComputePath path) => path switch
    {
        ExpertComputePath.Gather => new(long.MaxValue, long.MaxValue),
        ExpertComputePath.Dense => new(0, long.MaxValue),
        _ => new(0, 0),
    };

    public ExpertComputePath Choose(long tokens) =>
        tokens <= MaxGatherTokens ? ExpertComputePath.Gather
        : tokens <= MaxDenseTokens ? ExpertComputePath.Dense
        : ExpertComputePath.Sorted;
}
