using System.Text.Json.Nodes;

namespace DeepSeek.Operator.Tests.Support;

/// <summary>
/// One <c>x-kubernetes-validations</c> entry of a CRD schema, with the path of the schema node that holds
/// it (<c>spec.model.source</c>; <c>[*]</c> for array items, <c>{*}</c> for map values) and that node's schema.
/// </summary>
public sealed record CrdValidationRule(string SchemaPath, string Rule, string Message, string? FieldPath, JsonObject Schema)
{
    /// <summary>The field the API server names when the rule fails: the node's path plus the rule's fieldPath.</summary>
    public string BlamedField => SchemaPath + (FieldPath ?? "");

    /// <summary>Every rule under an openAPIV3Schema, depth first.</summary>
    public static IReadOnlyList<CrdValidationRule> Collect(JsonObject schema)
    {
        var rules = new List<CrdValidationRule>();
        Walk(schema, "", rules);
        return rules;
    }

    private static void Walk(JsonObject schema, string path, List<CrdValidationRule> rules)
    {
        foreach (var validation in schema["x-kubernetes-validations"]?.AsArray() ?? [])
            rules.Add(new(path, (string)validation!["rule"]!, (string?)validation["message"] ?? "", (string?)validation["fieldPath"], schema));
        foreach (var (name, child) in schema["properties"]?.AsObject() ?? [])
            Walk(child!.AsObject(), path.Length == 0 ? name : $"{path}.{name}", rules);
        if (schema["items"] is JsonObject items) Walk(items, path + "[*]", rules);
        if (schema["additionalProperties"] is JsonObject additional) Walk(additional, path + "{*}", rules);
    }

    /// <summary>
    /// The values the rule is evaluated on in an object: one per match of its path. An absent value
    /// is no match, as the API server skips rules of absent fields.
    /// </summary>
    public IEnumerable<JsonNode> ValuesIn(JsonNode root)
    {
        IEnumerable<JsonNode> current = [root];
        foreach (var segment in Segments(SchemaPath))
        {
            current = segment switch
            {
                "[*]" => current.OfType<JsonArray>().SelectMany(a => a).OfType<JsonNode>(),
                "{*}" => current.OfType<JsonObject>().SelectMany(o => o.Select(kv => kv.Value)).OfType<JsonNode>(),
                _ => current.OfType<JsonObject>().Select(o => o[segment]).OfType<JsonNode>(),
            };
        }
        return current.ToList();
    }

    /// <summary>Whether the rule's fieldPath names a property of the node's schema (the API server refuses a CRD whose fieldPath does not).</summary>
    public bool FieldPathExistsInSchema()
    {
        if (FieldPath is null) return true;
        JsonObject? node = Schema;
        foreach (var name in FieldPath.TrimStart('.').Split('.'))
            node = node?["properties"]?[name] as JsonObject;
        return node is not null;
    }

    private static IEnumerable<string> Segments(string path)
    {
        var start = 0;
        for (var i = 0; i <= path.Length; i++)
        {
            if (i < path.Length && path[i] is not ('.' or '[' or '{')) continue;
            if (i > start) yield return path[start..i];
            if (i < path.Length && path[i] is '[' or '{')
            {
                yield return path.Substring(i, 3);
                i += 2;
            }
            start = i + 1;
        }
    }
}
