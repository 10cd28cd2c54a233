namespace DeepSeek.Engine.Requests;

/// <summary>A token with its log-probability.</summary>
public readonly record struct TokenLogprob(int TokenId, float Logprob);
