using DeepSeek.Gateway.Keys;

namespace DeepSeek.Gateway.Api;

/// <summary>What one request's handling learns on its way, for its audit line and metrics at the end.</summary>
internal sealed class RequestRecord(string requestId, long startedAt)
{
    public string RequestId { get; } = requestId;
    public long StartedAt { get; } = startedAt;
    public KeyCheckResult Key { get; set; }
    /// <summary>The model's configured name once known (never a client's unknown name: it would be a label per typo).</summary>
    public string? Model { get; set; }
    public string? Variant { get; set; }
    public string? Endpoint { get; set; }
    public long? PromptTokens { get; set; }
    public long? CompletionTokens { get; set; }
    public string? Cache { get; set; }
}
