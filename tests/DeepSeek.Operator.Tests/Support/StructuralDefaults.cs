using System.Text.Json.Nodes;

namespace DeepSeek.Operator.Tests.Support;

/// <summary>
/// The API server's structural defaulting: a missing property with a <c>default</c> gets it, and
/// defaults apply inside defaulted objects too (<c>runtime: {}</c> then <c>gpusPerPod: 1</c>).
/// It runs before validation, so CEL rules see defaulted objects.
/// </summary>
public static class StructuralDefaults
{
    public static JsonNode Apply(JsonNode value, JsonObject schema)
    {
        var copy = value.DeepClone();
        Fill(copy, schema);
        return copy;
    }

    private static void Fill(JsonNode? value, JsonObject schema)
    {
        switch (value)
        {
            case JsonObject obj:
                foreach (var (name, child) in schema["properties"]?.AsObject() ?? [])
                {
                    var childSchema = child!.AsObject();
                    if (!obj.ContainsKey(name) && childSchema["default"] is { } fallback) obj[name] = fallback.DeepClone();
                    if (obj[name] is { } present) Fill(present, childSchema);
                }
                if (schema["additionalProperties"] is JsonObject additional)
                    foreach (var (_, child) in obj) Fill(child, additional);
                break;
            case JsonArray array when schema["items"] is JsonObject items:
                foreach (var item in array) Fill(item, items);
                break;
        }
    }
}
