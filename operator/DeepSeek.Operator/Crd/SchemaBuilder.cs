using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using DeepSeek.Operator.Validation;
using k8s.Models;

namespace DeepSeek.Operator.Crd;

/// <summary>
/// OpenAPI v3 structural schema of a C# type, by reflection over its public properties: JSON names,
/// types, <see cref="RangeAttribute"/>/<see cref="MinLengthAttribute"/>/<see cref="AllowedValuesAttribute"/>
/// constraints, <see cref="RequiredAttribute"/>, <see cref="CelRuleAttribute"/> rules, descriptions
/// from XML documentation, and defaults read from a freshly constructed instance (so the C#
/// initialisers and the CRD's defaults cannot disagree).
/// </summary>
public sealed class SchemaBuilder(XmlDocumentation documentation)
{
    private const int MaxDepth = 12;

    public JsonObject ForType(Type type, bool withDefaults) => ForClass(type, withDefaults, 0);

    private JsonObject ForClass(Type type, bool withDefaults, int depth)
    {
        if (depth > MaxDepth) throw new InvalidOperationException($"Schema of {type.Name} nests too deeply (a cycle?).");
        var schema = new JsonObject { ["type"] = "object" };
        if (documentation.OfType(type) is { } description) schema["description"] = description;
        var instance = withDefaults && type.GetConstructor(Type.EmptyTypes) is not null ? Activator.CreateInstance(type) : null;
        var properties = new JsonObject();
        var required = new JsonArray();
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetCustomAttribute<JsonIgnoreAttribute>() is not null || property.GetIndexParameters().Length > 0) continue;
            var name = JsonName(property);
            var propertySchema = ForProperty(property, withDefaults, depth);
            if (instance is not null && property.GetCustomAttribute<RequiredAttribute>() is null && DefaultOf(property, instance) is { } value) propertySchema["default"] = value;
            properties[name] = propertySchema;
            if (property.GetCustomAttribute<RequiredAttribute>() is not null) required.Add(name);
        }
        foreach (var name in EmbeddedFieldRules.Required(type)) required.Add(name);
        schema["properties"] = properties;
        if (required.Count > 0) schema["required"] = required;
        AddRules(schema, type.GetCustomAttributes<CelRuleAttribute>());
        return schema;
    }

    private JsonObject ForProperty(PropertyInfo property, bool withDefaults, int depth)
    {
        JsonObject schema;
        if (property.GetCustomAttribute<PreserveUnknownFieldsAttribute>() is not null)
            schema = new JsonObject { ["type"] = "object", ["x-kubernetes-preserve-unknown-fields"] = true };
        else
            schema = ForValue(property.PropertyType, withDefaults, depth + 1);

        // A property's own summary wins over its type's.
        if (documentation.OfProperty(property) is { } description) schema["description"] = description;
        else if (property.DeclaringType?.Namespace?.StartsWith("k8s", StringComparison.Ordinal) == true) schema.Remove("description");

        if (property.GetCustomAttribute<RangeAttribute>() is { } range)
        {
            schema["minimum"] = Number(range.Minimum);
            schema["maximum"] = Number(range.Maximum);
        }
        var isArray = (string?)schema["type"] == "array";
        var isMap = schema["additionalProperties"] is not null;
        if (property.GetCustomAttribute<MinLengthAttribute>() is { } min) schema[isArray ? "minItems" : isMap ? "minProperties" : "minLength"] = min.Length;
        if (property.GetCustomAttribute<MaxLengthAttribute>() is { } max) schema[isArray ? "maxItems" : isMap ? "maxProperties" : "maxLength"] = max.Length;
        EmbeddedFieldRules.Apply(property, schema);
        if (property.GetCustomAttribute<AllowedValuesAttribute>() is { } allowed)
            schema["enum"] = new JsonArray(allowed.Values.Select(v => JsonValue.Create(v?.ToString())).ToArray<JsonNode?>());
        AddRules(schema, property.GetCustomAttributes<CelRuleAttribute>());
        return schema;
    }

    private JsonObject ForValue(Type type, bool withDefaults, int depth)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string)) return new JsonObject { ["type"] = "string" };
        if (type == typeof(bool)) return new JsonObject { ["type"] = "boolean" };
        if (type == typeof(int)) return new JsonObject { ["type"] = "integer", ["format"] = "int32" };
        if (type == typeof(long)) return new JsonObject { ["type"] = "integer", ["format"] = "int64" };
        if (type == typeof(double) || type == typeof(float)) return new JsonObject { ["type"] = "number" };
        if (type == typeof(DateTime) || type == typeof(DateTimeOffset)) return new JsonObject { ["type"] = "string", ["format"] = "date-time" };
        if (type == typeof(byte[])) return new JsonObject { ["type"] = "string", ["format"] = "byte" };
        if (type == typeof(ResourceQuantity) || type == typeof(IntOrString))
        {
            var intOrString = new JsonObject
            {
                ["anyOf"] = new JsonArray(new JsonObject { ["type"] = "integer" }, new JsonObject { ["type"] = "string" }),
                ["x-kubernetes-int-or-string"] = true,
            };
            // A pattern applies to the string form only; without it "lots" is admitted and fails later.
            if (type == typeof(ResourceQuantity)) intOrString["pattern"] = KubernetesSyntax.QuantityPattern;
            return intOrString;
        }
        if (DictionaryValueType(type) is { } valueType)
            return new JsonObject { ["type"] = "object", ["additionalProperties"] = ForValue(valueType, withDefaults, depth + 1) };
        if (ListItemType(type) is { } itemType)
            return new JsonObject { ["type"] = "array", ["items"] = ForValue(itemType, withDefaults, depth + 1) };
        if (type.IsClass) return ForClass(type, withDefaults, depth + 1);
        throw new NotSupportedException($"No schema mapping for {type.FullName}.");
    }

    private static JsonNode? DefaultOf(PropertyInfo property, object instance)
    {
        var type = property.PropertyType;
        if (Nullable.GetUnderlyingType(type) is not null) return null;
        var value = property.GetValue(instance);
        if (value is null) return null;
        if (type.IsValueType || type == typeof(string)) return JsonSerializer.SerializeToNode(value, type);
        // Objects created by their parent's initialiser default to {}, so the API server fills in their own defaults.
        if (type.IsClass && DictionaryValueType(type) is null && ListItemType(type) is null) return new JsonObject();
        return null;
    }

    private static void AddRules(JsonObject schema, IEnumerable<CelRuleAttribute> rules)
    {
        var list = rules.ToList();
        if (list.Count == 0) return;
        schema["x-kubernetes-validations"] = new JsonArray(list.Select(r =>
        {
            var rule = new JsonObject { ["rule"] = r.Rule, ["message"] = r.Message };
            if (r.FieldPath is not null) rule["fieldPath"] = r.FieldPath;
            return (JsonNode)rule;
        }).ToArray());
    }

    private static JsonValue Number(object value) => value switch
    {
        int i => JsonValue.Create(i),
        double d when d == Math.Floor(d) && Math.Abs(d) < 1e15 => JsonValue.Create((long)d),
        double d => JsonValue.Create(d),
        _ => JsonValue.Create(Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture)),
    };

    public static string JsonName(PropertyInfo property) =>
        property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.CamelCase.ConvertName(property.Name);

    private static Type? DictionaryValueType(Type type)
    {
        var dictionary = type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IDictionary<,>)
            ? type
            : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IDictionary<,>));
        return dictionary?.GetGenericArguments()[0] == typeof(string) ? dictionary.GetGenericArguments()[1] : null;
    }

    private static Type? ListItemType(Type type)
    {
        if (type == typeof(string) || !typeof(IEnumerable).IsAssignableFrom(type)) return null;
        var enumerable = type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IEnumerable<>)
            ? type
            : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>));
        return enumerable?.GetGenericArguments()[0];
    }
}
