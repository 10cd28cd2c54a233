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
    double FloorDecodeTokensPerSecond)
{
    /// <summary>
    /// The measured requests' generated token ids, in submission order: what comparing two
    /// configurations of the same seed checks (CUDA graphs against eager decode, greedy).
    /// </summary>
    public IReadOnlyList<IReadOnlyList<int>> TokenIds { get; init; } = [];

    /// <summary>What the row ran: null for a plain run; "base" or the LoRA adapters of a <c>--lora-adapters</c> run.</summary>
    public string? Variant { get; init; }
}
