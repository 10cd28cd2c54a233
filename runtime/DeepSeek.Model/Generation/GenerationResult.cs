namespace DeepSeek.Model.Generation;

/// <summary>Generated token ids (prompt excluded) and, when asked for, their log-probabilities.</summary>
public sealed record GenerationResult(IReadOnlyList<long> TokenIds, IReadOnlyList<TokenLogprob>? Logprobs);
