using System.Text;
using System.Text.Json;
using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.Structured;

/// <summary>
/// A JSON schema to the grammar of the documents it accepts (<see cref="JsonGrammar"/>), refusing
/// what it cannot honour by name (<c>unsupported_value</c>) and bounding what a hostile schema can
/// cost: depth, schema objects, enum values and their bytes, anyOf alternatives, minItems. Supported:
/// <c>type</c> (one or a list), <c>properties</c>, <c>required</c>, <c>additionalProperties</c>
/// (false, or absent/true: only the listed properties are written), <c>items</c>, <c>minItems</c>,
/// <c>maxItems</c>, <c>enum</c>, <c>const</c>, <c>anyOf</c>, and the annotations that change nothing.
/// </summary>
internal sealed class JsonSchemaCompiler
{
    public const int MaxDepth = 16;
    public const int MaxSchemaObjects = 1024;
    public const int MaxLiterals = 1024;
    public const int MaxLiteralBytes = 64 * 1024;
    public const int MaxAlternatives = 16;
    public const int MaxMinItems = 256;
    public const int MaxPropertyNameBytes = 256;

    private static readonly HashSet<string> Annotations = new(StringComparer.Ordinal)
    {
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly", "writeOnly",
    };

    private static readonly HashSet<string> Keywords = new(StringComparer.Ordinal)
    {
        "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "enum", "const", "anyOf",
    };

    private int _objects;
    private int _literals;
    private int _literalBytes;
    private readonly List<Action> _seals = [];

    /// <exception cref="InvalidRequestException">The schema uses a feature this server does not implement, breaks a bound, or is not a schema.</exception>
    public static JsonNode Compile(JsonElement schema, string param)
    {
        var compiler = new JsonSchemaCompiler();
        var root = compiler.Node(schema, param, 0);
        // Minimum lengths are known once every child is built: seal from the leaves up (added children first).
        foreach (var seal in compiler._seals) seal();
        return root;
    }

    private JsonNode Node(JsonElement schema, string param, int depth)
    {
        if (depth > MaxDepth)
            throw Invalid(param, $"{param} nests deeper than {MaxDepth} levels; flatten the schema.");
        if (++_objects > MaxSchemaObjects)
            throw Invalid(param, $"The schema has more than {MaxSchemaObjects} schema objects; simplify it.");
        if (schema.ValueKind == JsonValueKind.True) return AnyValueNode.Instance;
        if (schema.ValueKind != JsonValueKind.Object)
            throw Invalid(param, $"{param} must be a JSON schema object (or true), got {Kind(schema)}.");

        foreach (var member in schema.EnumerateObject())
        {
            if (Annotations.Contains(member.Name) || Keywords.Contains(member.Name)) continue;
            throw Unsupported($"{param}.{member.Name}",
                $"JSON schema keyword '{member.Name}' ({param}.{member.Name}) is not supported for structured outputs. Supported: {string.Join(", ", Keywords)} (docs/api.md); remove it.");
        }

        if (schema.TryGetProperty("anyOf", out var anyOf))
        {
            if (schema.EnumerateObject().Any(m => Keywords.Contains(m.Name) && m.Name != "anyOf"))
                throw Unsupported(param, $"{param}: anyOf beside other keywords is not supported; move them into each alternative.");
            if (anyOf.ValueKind != JsonValueKind.Array || anyOf.GetArrayLength() == 0)
                throw Invalid($"{param}.anyOf", $"{param}.anyOf must be a non-empty list of schemas.");
            if (anyOf.GetArrayLength() > MaxAlternatives)
                throw Invalid($"{param}.anyOf", $"{param}.anyOf has {anyOf.GetArrayLength()} alternatives; at most {MaxAlternatives} are allowed.");
            var alternatives = anyOf.EnumerateArray().Select((a, i) => Node(a, $"{param}.anyOf[{i}]", depth + 1)).ToList();
            return Alternatives(alternatives);
        }

        if (schema.TryGetProperty("const", out var constant)) return Literals([constant], schema, param);
        if (schema.TryGetProperty("enum", out var values))
        {
            if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0)
                throw Invalid($"{param}.enum", $"{param}.enum must be a non-empty list.");
            return Literals([.. values.EnumerateArray()], schema, param);
        }

        var types = Types(schema, param);
        var nodes = types.Select(type => Typed(type, schema, param, depth)).ToList();
        return nodes.Count == 1 ? nodes[0] : Alternatives(nodes);
    }

    private AnyOfNode Alternatives(List<JsonNode> alternatives)
    {
        var node = new AnyOfNode(alternatives);
        _seals.Add(node.Seal);
        return node;
    }

    private static List<string> Types(JsonElement schema, string param)
    {
        if (!schema.TryGetProperty("type", out var type))
        {
            // Without a type, the container keywords imply one; with none at all, any value.
            if (schema.TryGetProperty("properties", out _) || schema.TryGetProperty("additionalProperties", out _) || schema.TryGetProperty("required", out _)) return ["object"];
            if (schema.TryGetProperty("items", out _) || schema.TryGetProperty("minItems", out _) || schema.TryGetProperty("maxItems", out _)) return ["array"];
            return ["any"];
        }
        var list = type.ValueKind switch
        {
            JsonValueKind.String => [type.GetString()!],
            JsonValueKind.Array when type.GetArrayLength() > 0 && type.EnumerateArray().All(t => t.ValueKind == JsonValueKind.String)
                => type.EnumerateArray().Select(t => t.GetString()!).Distinct(StringComparer.Ordinal).ToList(),
            _ => throw Invalid($"{param}.type", $"{param}.type must be a type name or a non-empty list of them."),
        };
        foreach (var name in list)
            if (name is not ("object" or "array" or "string" or "number" or "integer" or "boolean" or "null"))
                throw Invalid($"{param}.type", $"{param}.type '{name}' is not a JSON schema type; use object, array, string, number, integer, boolean or null.");
        return list;
    }

    private JsonNode Typed(string type, JsonElement schema, string param, int depth) => type switch
    {
        "any" => AnyValueNode.Instance,
        "string" => StringNode.Instance,
        "number" => NumberNode.Number,
        "integer" => NumberNode.Integer,
        "boolean" => Literal(["true", "false"]),
        "null" => Literal(["null"]),
        "array" => Array(schema, param, depth),
        _ => Object(schema, param, depth),
    };

    private static LiteralNode Literal(string[] texts) => new([.. texts.Select(Encoding.ASCII.GetBytes)]);

    private ArrayNode Array(JsonElement schema, string param, int depth)
    {
        var min = Count(schema, "minItems", param) ?? 0;
        var max = Count(schema, "maxItems", param) ?? int.MaxValue;
        if (min > MaxMinItems)
            throw Invalid($"{param}.minItems", $"{param}.minItems is {min}; at most {MaxMinItems} is supported.");
        if (max < min)
            throw Invalid($"{param}.maxItems", $"{param}.maxItems ({max}) is below minItems ({min}); no array satisfies both.");
        JsonNode items = AnyValueNode.Instance;
        if (schema.TryGetProperty("items", out var itemSchema))
        {
            if (itemSchema.ValueKind == JsonValueKind.False)
            {
                if (min > 0) throw Invalid($"{param}.items", $"{param}.items is false but minItems is {min}; no array satisfies both.");
                max = 0;
            }
            else
            {
                items = Node(itemSchema, $"{param}.items", depth + 1);
            }
        }
        var node = new ArrayNode(items, min, max);
        _seals.Add(node.Seal);
        return node;
    }

    private static int? Count(JsonElement schema, string keyword, string param)
    {
        if (!schema.TryGetProperty(keyword, out var value)) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var count) || count < 0)
            throw Invalid($"{param}.{keyword}", $"{param}.{keyword} must be a non-negative integer.");
        return (int)Math.Min(count, int.MaxValue);
    }

    private JsonNode Object(JsonElement schema, string param, int depth)
    {
        var hasProperties = schema.TryGetProperty("properties", out var properties);
        if (hasProperties && properties.ValueKind != JsonValueKind.Object)
            throw Invalid($"{param}.properties", $"{param}.properties must be an object of schemas.");
        var closed = false;
        if (schema.TryGetProperty("additionalProperties", out var additional))
        {
            if (additional.ValueKind == JsonValueKind.False) closed = true;
            else if (additional.ValueKind != JsonValueKind.True)
                throw Unsupported($"{param}.additionalProperties", $"{param}.additionalProperties as a schema is not supported; send false (or true).");
        }
        var required = new HashSet<string>(StringComparer.Ordinal);
        if (schema.TryGetProperty("required", out var requiredList))
        {
            if (requiredList.ValueKind != JsonValueKind.Array || requiredList.EnumerateArray().Any(r => r.ValueKind != JsonValueKind.String))
                throw Invalid($"{param}.required", $"{param}.required must be a list of property names.");
            foreach (var name in requiredList.EnumerateArray()) required.Add(name.GetString()!);
        }
        var names = hasProperties ? properties.EnumerateObject().Select(p => p.Name).ToHashSet(StringComparer.Ordinal) : [];
        if (hasProperties && names.Count != properties.EnumerateObject().Count())
            throw Invalid($"{param}.properties", $"{param}.properties names a property twice; name each once.");
        foreach (var name in required)
            if (!names.Contains(name))
                throw Unsupported($"{param}.required", $"{param}.required names '{name}', which is not in {param}.properties; a required property needs its schema there.");

        // No properties and not closed: any object.
        if (names.Count == 0 && !closed) return AnyObjectNode.Instance;

        var list = new List<(string, byte[], JsonNode, bool)>();
        if (hasProperties)
            foreach (var property in properties.EnumerateObject())
            {
                var key = Encoding.UTF8.GetBytes(JsonText.Quote(property.Name) + ":");
                if (key.Length > MaxPropertyNameBytes + 3)
                    throw Invalid($"{param}.properties", $"Property name '{property.Name[..32]}...' is longer than {MaxPropertyNameBytes} bytes.");
                var value = Node(property.Value, $"{param}.properties.{property.Name}", depth + 1);
                list.Add((property.Name, key, value, required.Contains(property.Name)));
            }
        var node = new ObjectNode(list);
        _seals.Add(node.Seal);
        return node;
    }

    private LiteralNode Literals(IReadOnlyList<JsonElement> values, JsonElement schema, string param)
    {
        var types = schema.TryGetProperty("type", out _) ? Types(schema, param) : null;
        var texts = new List<byte[]>();
        foreach (var value in values)
        {
            if (types is not null && !types.Any(t => Matches(t, value))) continue;
            var text = Encoding.UTF8.GetBytes(JsonText.Compact(value));
            _literalBytes += text.Length;
            if (++_literals > MaxLiterals || _literalBytes > MaxLiteralBytes)
                throw Invalid(param, $"The schema's enum and const values exceed {MaxLiterals} values or {MaxLiteralBytes} bytes in all; shorten them.");
            texts.Add(text);
        }
        if (texts.Count == 0)
            throw Invalid(param, $"{param}: no enum or const value has the declared type, so no document satisfies it.");
        return new LiteralNode(texts);
    }

    private static bool Matches(string type, JsonElement value) => type switch
    {
        "string" => value.ValueKind == JsonValueKind.String,
        "number" => value.ValueKind == JsonValueKind.Number,
        "integer" => value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _),
        "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "null" => value.ValueKind == JsonValueKind.Null,
        "array" => value.ValueKind == JsonValueKind.Array,
        "object" => value.ValueKind == JsonValueKind.Object,
        _ => true,
    };

    private static string Kind(JsonElement value) => value.ValueKind.ToString().ToLowerInvariant();

    private static InvalidRequestException Invalid(string param, string message) => new(param, message);

    private static InvalidRequestException Unsupported(string param, string message) => new(param, message, "unsupported_value");
}

/// <summary>Compact JSON text as the grammar writes it: no whitespace, strings escaped minimally.</summary>
internal static class JsonText
{
    public static string Compact(JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                return Quote(value.GetString()!);
            case JsonValueKind.Array:
                return "[" + string.Join(",", value.EnumerateArray().Select(Compact)) + "]";
            case JsonValueKind.Object:
                return "{" + string.Join(",", value.EnumerateObject().Select(p => Quote(p.Name) + ":" + Compact(p.Value))) + "}";
            default:
                return value.GetRawText();
        }
    }

    public static string Quote(string text)
    {
        var builder = new StringBuilder(text.Length + 2).Append('"');
        foreach (var c in text)
        {
            switch (c)
            {
                case '"': builder.Append("\\\""); break;
                case '\\': builder.Append("\\\\"); break;
                case < ' ': builder.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture)); break;
                default: builder.Append(c); break;
            }
        }
        return builder.Append('"').ToString();
    }
}
