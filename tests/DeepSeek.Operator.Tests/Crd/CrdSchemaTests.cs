using System.Text.Json.Nodes;
using DeepSeek.Operator.Cluster;
using DeepSeek.Operator.Cli;
using DeepSeek.Operator.Serialization;
using DeepSeek.Operator.Tests.Support;

namespace DeepSeek.Operator.Tests.Crd;

/// <summary>
/// What the API server checks when the CRD itself is created, before any DeepSeekModel exists
/// (kubernetes.io, "Extend the Kubernetes API with CustomResourceDefinitions": structural schema,
/// defaulting, validation rules). A CRD that fails here cannot be installed with kubectl or helm.
/// </summary>
public sealed class CrdSchemaTests
{
    private static readonly JsonNode Crd = YamlJson.ParseAll(CrdCommand.Render())[0]!;
    private static readonly JsonObject Schema = Crd["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!.AsObject();

    /// <summary>
    /// "Default values must be pruned and must validate", and validation rules apply to them: the API
    /// server evaluates every rule on each <c>default</c> as written, without nested defaults (a default of
    /// <c>{}</c> does not have the fields its own properties default). A rule that reads a field without
    /// <c>has()</c> fails there with "no such key" and the CRD is refused.
    /// </summary>
    [Fact]
    public async Task Every_cel_rule_holds_on_every_default_as_written()
    {
        var cases = new List<(string Where, CrdValidationRule Rule, JsonNode Value)>();
        foreach (var (path, node) in Nodes(Schema, ""))
        {
            if (node["default"] is not { } fallback) continue;
            foreach (var rule in CrdValidationRule.Collect(node))
                foreach (var value in rule.ValuesIn(fallback))
                    cases.Add((path, rule, value));
        }
        // spec.autoscaling defaults to {} and carries the min/max rule: the case the API server refused.
        Assert.Contains(cases, c => c.Where == "spec.autoscaling");

        var results = await CelEvaluator.EvaluateAsync(cases.Select(c => (c.Rule.Rule, c.Value, c.Rule.Schema)).ToList());
        Assert.All(cases.Zip(results), c => Assert.True(c.Second == "true",
            $"rule at {c.First.Where}{(c.First.Rule.SchemaPath.Length > 0 ? "." + c.First.Rule.SchemaPath : "")} gave {c.Second} on the default {c.First.Value.ToJsonString()}: {c.First.Rule.Rule}"));
    }

    [Fact]
    public void Every_default_validates_against_its_own_schema()
    {
        foreach (var (path, node) in Nodes(Schema, ""))
            if (node["default"] is { } fallback)
                Assert.True(SchemaCheck.Validate(fallback, node, path) is [], $"default of {path}: {string.Join("; ", SchemaCheck.Validate(fallback, node, path))}");
    }

    /// <summary>
    /// The structural-schema rules (kubernetes.io, CRD page, "Specifying a structural schema"): every node
    /// has a type (or is int-or-string / preserves unknown fields); anyOf/allOf/oneOf/not only in the
    /// int-or-string form; properties and additionalProperties exclusive; metadata restricted to its type;
    /// and only schema and validation-rule fields that the oldest supported Kubernetes knows (an unknown
    /// field is dropped there, silently losing a rule).
    /// </summary>
    [Fact]
    public void Crd_is_a_structural_schema_in_fields_the_oldest_supported_kubernetes_knows()
    {
        var problems = new List<string>();
        foreach (var (path, node) in Nodes(Schema, ""))
        {
            foreach (var (key, _) in node)
                if (!SchemaFields.Contains(key)) problems.Add($"{path}: field {key} is not a JSONSchemaProps field");
            foreach (var rule in node["x-kubernetes-validations"]?.AsArray() ?? [])
                foreach (var (key, _) in rule!.AsObject())
                    if (!RuleFieldsSince.TryGetValue(key, out var since) || since > ClusterFeatures.OldestSupported)
                        problems.Add($"{path}: validation rule field {key} is unknown to Kubernetes {ClusterFeatures.OldestSupported}");
            var intOrString = node["x-kubernetes-int-or-string"]?.GetValue<bool>() == true;
            var preserve = node["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() == true;
            if (node["type"] is null && !intOrString && !preserve) problems.Add($"{path}: no type");
            foreach (var junctor in new[] { "allOf", "oneOf", "not" })
                if (node.ContainsKey(junctor)) problems.Add($"{path}: {junctor} is not used in a structural schema here");
            if (node["anyOf"] is JsonArray anyOf
                && !(intOrString && anyOf.Count == 2 && anyOf.All(a => a is JsonObject { Count: 1 } o && (string?)o["type"] is "integer" or "string")))
                problems.Add($"{path}: anyOf other than the int-or-string form");
            if (node.ContainsKey("properties") && node.ContainsKey("additionalProperties")) problems.Add($"{path}: properties and additionalProperties together");
            if (node["items"] is not null and not JsonObject) problems.Add($"{path}: items must be one schema");
            if (node["x-kubernetes-preserve-unknown-fields"] is { } p && p.GetValue<bool>() != true) problems.Add($"{path}: x-kubernetes-preserve-unknown-fields must be true when set");
        }
        var metadata = Schema["properties"]!["metadata"]!.AsObject();
        if (metadata.Count != 1 || (string?)metadata["type"] != "object") problems.Add("metadata: only type: object is allowed at the root");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void The_checks_above_catch_what_they_look_for()
    {
        // The structural walk on a deliberately broken schema: guards the test, not the CRD.
        var broken = JsonNode.Parse("""{"type":"object","properties":{"a":{"description":"no type"},"b":{"type":"object","properties":{},"additionalProperties":{"type":"string"}}}}""")!.AsObject();
        var untyped = Nodes(broken, "").Where(n => n.Node["type"] is null).Select(n => n.Path).ToList();
        Assert.Equal(["a"], untyped);
        Assert.Contains(Nodes(broken, ""), n => n.Node.ContainsKey("properties") && n.Node.ContainsKey("additionalProperties"));
    }

    /// <summary>JSONSchemaProps of apiextensions.k8s.io/v1 (kubernetes.io API reference, CustomResourceDefinition v1).</summary>
    private static readonly HashSet<string> SchemaFields =
    [
        "$schema", "description", "type", "format", "title", "default", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
        "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties", "minProperties",
        "required", "items", "allOf", "oneOf", "anyOf", "not", "properties", "additionalProperties", "patternProperties", "dependencies",
        "additionalItems", "externalDocs", "example", "nullable", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys", "x-kubernetes-list-type", "x-kubernetes-map-type", "x-kubernetes-validations",
    ];

    /// <summary>ValidationRule fields and the first release whose CustomResourceDefinition v1 API reference lists each.</summary>
    private static readonly Dictionary<string, Version> RuleFieldsSince = new()
    {
        ["rule"] = new(1, 25),
        ["message"] = new(1, 25),
        ["messageExpression"] = new(1, 27),
        ["reason"] = new(1, 28),
        ["fieldPath"] = new(1, 28),
        ["optionalOldSelf"] = new(1, 30),
    };

    private static IEnumerable<(string Path, JsonObject Node)> Nodes(JsonObject node, string path)
    {
        yield return (path, node);
        foreach (var (name, child) in node["properties"]?.AsObject() ?? [])
            foreach (var n in Nodes(child!.AsObject(), path.Length == 0 ? name : $"{path}.{name}")) yield return n;
        if (node["items"] is JsonObject items)
            foreach (var n in Nodes(items, path + "[*]")) yield return n;
        if (node["additionalProperties"] is JsonObject additional)
            foreach (var n in Nodes(additional, path + "{*}")) yield return n;
        foreach (var alternative in node["anyOf"]?.AsArray() ?? [])
            if (alternative is JsonObject o) foreach (var (key, _) in o) if (key != "type") yield return (path + ".anyOf", o);
    }
}
