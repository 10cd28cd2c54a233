using System.Text.Json.Nodes;

namespace DeepSeek.Operator.Validation;

/// <summary>
/// Fields an object has that its schema does not (the API server's strict field validation, which
/// kubectl asks for by default since 1.27, refuses them instead of dropping them silently): paths
/// such as <c>spec.runtime.gpusPerPods</c>. Objects that preserve unknown fields, and those whose
/// schema lists no properties (metadata), are not looked into.
/// </summary>
public static class UnknownFields
{
    public static IReadOnlyList<string> Find(JsonNode? value, JsonObject schema)
    {
        var found = new List<string>();
        Walk(value, schema, "", found);
        return found;
    }

    private static void Walk(JsonNode? value, JsonObject schema, string path, List<string> found)
    {
        switch (value)
        {
            case JsonObject obj when schema["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() != true:
                var properties = schema["properties"] as JsonObject;
                var additional = schema["additionalProperties"] as JsonObject;
                foreach (var (key, child) in obj)
                {
                    var childPath = path.Length == 0 ? key : $"{path}.{key}";
                    if (properties?[key] is JsonObject childSchema) Walk(child, childSchema, childPath, found);
                    else if (additional is not null) Walk(child, additional, childPath, found);
                    else if (properties is not null) found.Add(childPath);
                }
                break;
            case JsonArray array when schema["items"] is JsonObject items:
                for (var i = 0; i < array.Count; i++) Walk(array[i], items, $"{path}[{i}]", found);
                break;
        }
    }
}
