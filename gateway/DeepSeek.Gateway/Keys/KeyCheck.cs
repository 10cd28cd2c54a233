using DeepSeek.Gateway.Configuration;

namespace DeepSeek.Gateway.Keys;

/// <summary>The outcome of reading a request's <c>Authorization</c> header against the key table.</summary>
internal enum KeyVerdict
{
    /// <summary>No keys configured: anyone may call.</summary>
    Open,
    Known,
    /// <summary>No <c>Authorization: Bearer</c> header, or an empty key.</summary>
    Missing,
    Unknown,
}

internal readonly record struct KeyCheckResult(KeyVerdict Verdict, KeyConfig? Key)
{
    /// <summary>The audit's and metrics' name of the caller: the key's id, or <c>open</c>/<c>none</c>.</summary>
    public string Label => Key?.Id ?? (Verdict == KeyVerdict.Open ? "open" : "none");
}

/// <summary>Who is calling, and may they use this model: pure decisions on the header and the table.</summary>
internal static class KeyCheck
{
    public static KeyCheckResult Identify(KeyTable table, string? authorization)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (table.IsOpen) return new(KeyVerdict.Open, null);
        const string scheme = "Bearer ";
        if (authorization is null || !authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return new(KeyVerdict.Missing, null);
        var presented = authorization[scheme.Length..].Trim();
        if (presented.Length == 0) return new(KeyVerdict.Missing, null);
        var key = table.Find(presented);
        return key is null ? new(KeyVerdict.Unknown, null) : new(KeyVerdict.Known, key);
    }

    /// <summary>A key without a model list may use every model; an open gateway lets anyone use every model.</summary>
    public static bool Allows(KeyConfig? key, string model) =>
        key is null || key.Models is null || key.Models.Count == 0 || key.Models.Contains(model, StringComparer.Ordinal);
}
