namespace DeepSeek.Runtime.Bench;

/// <summary>One row of the bench table: one batch size through the engine.</summary>
public sealed record BenchResult(
    int Batch,
    int PromptTokens,
    int OutputTokens,
    int PrefillSteps,
    double PrefillTokensPerSecond,
    double DecodeTokensPerSecond,
    double DecodeMsPerStep,
    double TtftP50Ms,
    double TtftP90Ms,
    double TtftP99Ms,
    double ItlP50Ms,
    double ItlP90Ms,
    double ItlP99Ms,
    double FloorMsPerStep,
    double FloorDecodeTokensPerSecond);
