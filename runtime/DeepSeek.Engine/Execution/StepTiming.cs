namespace DeepSeek.Engine.Execution;

/// <summary>
/// One engine step as a benchmark sees it: tokens prefilled (prompt or recompute) and decoded, how
/// long the step took on the engine thread, and how much of that built the token masks of constrained
/// requests (structured outputs, tool calls) on the host.
/// </summary>
public sealed record StepTiming(int PrefillTokens, int DecodeTokens, int SampledTokens, TimeSpan Elapsed)
{
    public TimeSpan MaskElapsed { get; init; }
}
