namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

internal sealed record Usage(int PromptTokens, int CompletionTokens, int TotalTokens, Usage.TokenDetails? PromptTokensDetails = null)
{
    internal sealed record TokenDetails(int CachedTokens);
}
