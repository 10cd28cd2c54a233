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

    /// <summary>With <c>--record-margins</c>: the measured requests' prompts, so that another configuration can decode the same text (<c>--teacher-tokens</c>).</summary>
    public IReadOnlyList<IReadOnlyList<int>>? PromptTokenIds { get; init; }

    /// <summary>
    /// With <c>--record-margins</c>: per request and token, the log-probability of the chosen (greedy)
    /// token minus the runner-up's, the logit gap; where two configurations part, it says how near a tie it was.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<float>>? TokenMargins { get; init; }

    /// <summary>What the row ran: null for a plain run; "base", the LoRA adapters of a <c>--lora-adapters</c> run, or the constrained share of a <c>--structured-share</c> run.</summary>
    public string? Variant { get; init; }

    /// <summary>Requests of the batch that decoded under a JSON-schema constraint (<c>--structured-share</c>).</summary>
    public int ConstrainedRequests { get; init; }

    /// <summary>Mean host time per decode step spent building the constrained requests' token masks (inside the decode step time).</summary>
    public double MaskMsPerDecodeStep { get; init; }
}
