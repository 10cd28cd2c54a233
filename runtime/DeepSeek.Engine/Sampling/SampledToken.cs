using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.Sampling;

/// <summary>The chosen token, and its log-probabilities when the request asked for them.</summary>
public sealed record SampledToken(int TokenId, SampledLogprobs? Logprobs);
