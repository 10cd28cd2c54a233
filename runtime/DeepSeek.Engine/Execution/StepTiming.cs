namespace DeepSeek.Engine.Execution;

/// <summary>One engine step as a benchmark sees it: tokens prefilled (prompt or recompute) and decoded, and how long the step took on the engine thread.</summary>
public sealed record StepTiming(int PrefillTokens, int DecodeTokens, int SampledTokens, TimeSpan Elapsed);
