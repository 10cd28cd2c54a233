namespace DeepSeek.Gateway.Audit;

/// <summary>
/// One request in the audit log: who (the key's id, never the key), what (model, variant, endpoint),
/// the outcome and its cost. No prompt or completion text is ever written.
/// </summary>
internal sealed record AuditEntry(
    DateTimeOffset Time,
    string RequestId,
    string Key,
    string? Model,
    string? Variant,
    string? Endpoint,
    int Status,
    long? PromptTokens,
    long? CompletionTokens,
    long LatencyMs,
    string? Cache);
