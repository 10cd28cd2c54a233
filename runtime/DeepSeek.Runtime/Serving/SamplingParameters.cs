namespace DeepSeek.Runtime.Serving;

/// <summary>
/// Validated sampling settings. Neutral values mean "off": temperature 0 is greedy, top_p 1,
/// top_k 0, penalties 0 (presence, frequency) and 1 (repetition).
/// </summary>
public sealed record SamplingParameters
{
    public float Temperature { get; init; }
    public float TopP { get; init; } = 1f;
    public int TopK { get; init; }
    /// <summary>Null: the engine picks one (results are then not reproducible).</summary>
    public ulong? Seed { get; init; }
    public float PresencePenalty { get; init; }
    public float FrequencyPenalty { get; init; }
    public float RepetitionPenalty { get; init; } = 1f;
    /// <summary>Generation stops before any of these strings; they never appear in the output.</summary>
    public IReadOnlyList<string> Stop { get; init; } = [];
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];
    /// <summary>Stop strings, stop token ids and end-of-sequence are ignored until this many tokens exist.</summary>
    public int MinTokens { get; init; }
    public required int MaxTokens { get; init; }
    /// <summary>Report the chosen token's log-probability.</summary>
    public bool Logprobs { get; init; }
    /// <summary>Number of most likely alternatives to report per position (with <see cref="Logprobs"/>).</summary>
    public int TopLogprobs { get; init; }
}
