namespace DeepSeek.Runtime.Serving;

public sealed record GenerationUsage(int PromptTokens, int CompletionTokens, int CachedPromptTokens = 0);
