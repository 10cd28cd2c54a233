using System.Text.Json.Nodes;

namespace DeepSeek.KubernetesTestServer;

/// <summary>Equality-based label selectors: <c>k=v</c>, <c>k==v</c>, <c>k!=v</c>, <c>k</c>, <c>!k</c>, comma-joined.</summary>
public static class LabelSelector
{
    public static bool Matches(string? selector, JsonNode obj)
    {
        if (string.IsNullOrWhiteSpace(selector)) return true;
        var labels = obj["metadata"]?["labels"] as JsonObject;
        foreach (var raw in selector.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string? Label(string key) => labels?[key]?.GetValue<string>();
            if (raw.Contains("!=", StringComparison.Ordinal))
            {
                var parts = raw.Split("!=");
                if (Label(parts[0]) == parts[1]) return false;
            }
            else if (raw.Contains('=', StringComparison.Ordinal))
            {
                var parts = raw.Split('=', 2);
                if (Label(parts[0]) != parts[1].TrimStart('=')) return false;
            }
            else if (raw.StartsWith('!'))
            {
                if (Label(raw[1..]) is not null) return false;
            }
            else if (Label(raw) is null) return false;
        }
        return true;
    }
}
