namespace DeepSeek.Runtime.Serving;

public readonly record struct TokenLogprob(int TokenId, float Logprob);
