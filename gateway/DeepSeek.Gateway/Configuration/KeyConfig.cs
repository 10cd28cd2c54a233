namespace DeepSeek.Gateway.Configuration;

/// <summary>
/// One API key, by the SHA-256 of its text (the file never holds a key): its id (audit, metrics), the
/// models it may use (none listed: all) and its per-minute limits (0: none).
/// </summary>
internal sealed class KeyConfig
{
    public string Id { get; set; } = "";

    /// <summary>Lower-case or upper-case hex of SHA-256 over the key's UTF-8 bytes (<c>printf %s KEY | sha256sum</c>).</summary>
    public string Sha256 { get; set; } = "";

    public List<string> Models { get; set; } = [];

    public int RequestsPerMinute { get; set; }

    public long TokensPerMinute { get; set; }

    internal void Check(string at, HashSet<string> modelNames, List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(Id)) problems.Add($"{at}.id: missing");
        if (Sha256 is null || Sha256.Length != 64 || !Sha256.All(Uri.IsHexDigit))
            problems.Add($"{at}.sha256: not 64 hex digits (SHA-256 of the key: printf %s KEY | sha256sum)");
        foreach (var model in Models ?? [])
            if (!modelNames.Contains(model)) problems.Add($"{at}.models: '{model}' is not a model of this file");
        if (RequestsPerMinute < 0) problems.Add($"{at}.requestsPerMinute: {RequestsPerMinute} must be 0 (no limit) or more");
        if (TokensPerMinute < 0) problems.Add($"{at}.tokensPerMinute: {TokensPerMinute} must be 0 (no limit) or more");
    }
}
