using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace DeepSeek.Operator.Tests.Support;

/// <summary>
/// Structural OpenAPI v3 validation as the API server does it for a CRD (types, required, enum,
/// minimum/maximum, minLength/maxLength, pattern, maxProperties, unknown fields), without CEL (ModelValidator carries those rules).
/// </summary>
public static class SchemaCheck
{
    public static List<string> Validate(JsonNode? value, JsonObject schema, string path = "")
    {
        var errors = new List<string>();
        Check(value, schema, path, errors);
        return errors;
    }

    private static void Check(JsonNode? value, JsonObject schema, string path, List<string> errors)
    {
        if (value is null) return;
        if (schema["x-kubernetes-int-or-string"]?.GetValue<bool>() == true)
        {
            if (value is not JsonValue v || v.GetValueKind() is not (JsonValueKind.Number or JsonValueKind.String)) errors.Add($"{path}: must be an integer or a string");
            // A pattern beside int-or-string constrains the string form only (JSON Schema: pattern ignores non-strings).
            else if (v.GetValueKind() == JsonValueKind.String && schema["pattern"] is { } intOrStringPattern && !Regex.IsMatch(v.GetValue<string>(), (string)intOrStringPattern!))
                errors.Add($"{path}: should match '{intOrStringPattern}'");
            return;
        }
        var type = (string?)schema["type"];
        switch (type)
        {
            case "object" when value is JsonObject obj:
                if (schema["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() == true) return;
                var properties = schema["properties"] as JsonObject;
                var additional = schema["additionalProperties"] as JsonObject;
                if (schema["maxProperties"] is { } maxProperties && obj.Count > int.Parse(maxProperties.ToJsonString(), CultureInfo.InvariantCulture)) errors.Add($"{path}: must have at most {maxProperties} properties");
                foreach (var required in schema["required"]?.AsArray().Select(r => (string)r!) ?? [])
                    if (!obj.ContainsKey(required)) errors.Add($"{path}.{required}: Required value");
                foreach (var (key, child) in obj)
                {
                    if (properties?[key] is JsonObject childSchema) Check(child, childSchema, $"{path}.{key}", errors);
                    else if (additional is not null) Check(child, additional, $"{path}.{key}", errors);
                    else if (properties is not null) errors.Add($"{path}.{key}: unknown field");
                }
                return;
            case "array" when value is JsonArray array:
                for (var i = 0; i < array.Count; i++) Check(array[i], schema["items"]!.AsObject(), $"{path}[{i}]", errors);
                return;
            case "string" when value is JsonValue s && s.GetValueKind() == JsonValueKind.String:
                var text = s.GetValue<string>();
                if (schema["minLength"] is { } minLength && text.Length < int.Parse(minLength.ToJsonString(), CultureInfo.InvariantCulture)) errors.Add($"{path}: shorter than {minLength}");
                if (schema["maxLength"] is { } maxLength && text.Length > int.Parse(maxLength.ToJsonString(), CultureInfo.InvariantCulture)) errors.Add($"{path}: longer than {maxLength}");
                if (schema["pattern"] is { } pattern && !Regex.IsMatch(text, (string)pattern!)) errors.Add($"{path}: should match '{pattern}'");
                if (schema["enum"] is JsonArray allowed && allowed.All(a => (string?)a != text)) errors.Add($"{path}: unsupported value \"{text}\"");
                return;
            case "integer" when value is JsonValue i && i.GetValueKind() == JsonValueKind.Number && i.ToJsonString().All(c => char.IsDigit(c) || c == '-'):
            case "number" when value is JsonValue n && n.GetValueKind() == JsonValueKind.Number:
                var number = double.Parse(value.ToJsonString(), CultureInfo.InvariantCulture);
                if (schema["minimum"] is { } min && number < double.Parse(min.ToJsonString(), CultureInfo.InvariantCulture)) errors.Add($"{path}: must be >= {min}");
                if (schema["maximum"] is { } max && number > double.Parse(max.ToJsonString(), CultureInfo.InvariantCulture)) errors.Add($"{path}: must be <= {max}");
                return;
            case "boolean" when value is JsonValue b && b.GetValueKind() is JsonValueKind.True or JsonValueKind.False:
                return;
            default:
                errors.Add($"{path}: expected {type}, got {value.ToJsonString()}");
                return;
        }
    }
}
