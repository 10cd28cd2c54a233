namespace DeepSeek.Runtime.Api;

/// <summary>Sampling fields as a caller sent them (null: not sent), before <see cref="SamplingRules"/> checks them.</summary>
public sealed record SamplingInput
{
    public double? Temperature { get; init; }
    public double? TopP { get; init; }
    public int? TopK { get; init; }
    public ulong? Seed { get; init; }
    public double? PresencePenalty { get; init; }
    public double? FrequencyPenalty { get; init; }
    public double? RepetitionPenalty { get; init; }
    public IReadOnlyList<string>? Stop { get; init; }
    public IReadOnlyList<int>? StopTokenIds { get; init; }
    public int? MinTokens { get; init; }
    public int? MaxTokens { get; init; }
    /// <summary>The API field that carried <see cref="MaxTokens"/>, for error messages.</summary>
    public string MaxTokensField { get; init; } = "max_tokens";
    public bool Logprobs { get; init; }
    public int? TopLogprobs { get; init; }
    public string TopLogprobsField { get; init; } = "top_logprobs";
}
