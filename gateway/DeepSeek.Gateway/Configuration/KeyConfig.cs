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

    /// <summary>The key's problems; <paramref name="modelNames"/> null when the models are not known ahead (discovered in a cluster).</summary>
    internal void Check(string at, HashSet<string>? modelNames, List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(Id)) problems.Add($"{at}.id: missing");
        if (Sha256 is null || Sha256.Length != 64 || !Sha256.All(Uri.IsHexDigit))
            problems.Add($"{at}.sha256: not 64 hex digits (SHA-256 of the key: printf %s KEY | sha256sum)");
        foreach (var model in Models ?? [])
        {
            if (string.IsNullOrWhiteSpace(model)) problems.Add($"{at}.models: an empty name");
            else if (modelNames is not null && !modelNames.Contains(model)) problems.Add($"{at}.models: '{model}' is not a model of this file");
        }
        if (RequestsPerMinute < 0) problems.Add($"{at}.requestsPerMinute: {RequestsPerMinute} must be 0 (no limit) or more");
        if (TokensPerMinute < 0) problems.Add($"{at}.tokensPerMinute: {TokensPerMinute} must be 0 (no limit) or more");
    }

    /// <summary>
    /// A list of keys (<paramref name="at"/><c>[i]</c> in the messages): each entry's problems, and ids or hashes
    /// listed twice. The file's <c>keys:</c> and each Secret of <c>cluster.keySecrets</c> are checked by it.
    /// </summary>
    internal static void CheckList(string at, IReadOnlyList<KeyConfig?>? keys, HashSet<string>? modelNames, List<string> problems)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var hashes = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < (keys?.Count ?? 0); i++)
        {
            var key = keys![i];
            if (key is null)
            {
                problems.Add($"{at}[{i}]: empty entry");
                continue;
            }
            key.Check($"{at}[{i}]", modelNames, problems);
            if (!string.IsNullOrWhiteSpace(key.Id) && !ids.Add(key.Id)) problems.Add($"{at}[{i}].id: '{key.Id}' is listed twice");
            if (!string.IsNullOrWhiteSpace(key.Sha256) && !hashes.Add(key.Sha256)) problems.Add($"{at}[{i}].sha256: the same key hash is listed twice");
        }
    }
}
