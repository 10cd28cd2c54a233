namespace DeepSeek.Engine.Requests;

/// <summary>
/// A prompt and its sampling that <see cref="RequestValidator"/> accepted, with <c>max_tokens</c>
/// resolved. Only the validator makes one, so whatever takes one (the engine's submission) knows the
/// request was checked exactly once and need not check it again.
/// </summary>
public sealed class ValidatedRequest
{
    internal ValidatedRequest(IReadOnlyList<int> promptTokenIds, SamplingParameters sampling)
    {
        PromptTokenIds = promptTokenIds;
        Sampling = sampling;
    }

    public IReadOnlyList<int> PromptTokenIds { get; }

    public SamplingParameters Sampling { get; }

    /// <summary>Choice i of <c>n</c> uses seed + i, so choices differ yet reproduce; any seed is valid, so the copy stays validated.</summary>
    public ValidatedRequest ForChoice(int choice) =>
        choice == 0 || Sampling.Seed is not { } seed ? this : new(PromptTokenIds, Sampling with { Seed = unchecked(seed + (ulong)choice) });
}
