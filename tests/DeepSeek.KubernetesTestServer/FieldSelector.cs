using System.Text.Json.Nodes;

namespace DeepSeek.KubernetesTestServer;

/// <summary>
/// Field selectors of equality (<c>involvedObject.uid=…</c>, <c>metadata.name==…</c>), comma-joined, as
/// a list request's <c>fieldSelector</c>. The real API server supports only a few fields per kind
/// (for Events: involvedObject.*, reason, source, type); here any dotted path is matched.
/// </summary>
public static class FieldSelector
{
    public static IReadOnlyList<(string Path, string Value)>? Parse(string selector)
    {
        var terms = new List<(string, string)>();
        foreach (var raw in selector.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (raw.Contains("!=", StringComparison.Ordinal)) return null;
            var parts = raw.Split('=', 2);
            if (parts.Length != 2 || parts[0].Length == 0) return null;
            terms.Add((parts[0], parts[1].TrimStart('=')));
        }
        return terms;
    }

    public static bool Matches(IReadOnlyList<(string Path, string Value)> terms, JsonNode obj) =>
        terms.All(t => t.Path.Split('.').Aggregate((JsonNode?)obj, (node, field) => node?[field]) is JsonValue v && v.ToString() == t.Value);
}
