namespace DeepSeek.Engine.Requests;

/// <summary>
/// Log-probabilities of one generated position: the chosen token, its rank (1 = most likely) and the
/// <c>K</c> most likely tokens, most likely first. Computed from the model's raw logits (before
/// penalties, temperature, top-k/top-p), as vLLM does by default.
/// </summary>
public sealed record SampledLogprobs(TokenLogprob Chosen, int ChosenRank, IReadOnlyList<TokenLogprob> Top);

/// <summary>A token with its log-probability.</summary>
public readonly record struct TokenLogprob(int TokenId, float Logprob);
