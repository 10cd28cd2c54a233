namespace DeepSeek.Engine.Requests;

/// <summary>Token counts of a request, as OpenAI's <c>usage</c> reports them; cached prompt tokens came from the prefix cache.</summary>
public sealed record UsageInfo(int PromptTokens, int CompletionTokens, int CachedPromptTokens)
{
    public int TotalTokens => PromptTokens + CompletionTokens;
}
