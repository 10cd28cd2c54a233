using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace DeepSeek.Operator.Serialization;

/// <summary>
/// YAML ⇄ JSON for Kubernetes manifests: objects are handled as JSON (what the API speaks and what
/// KubernetesClient's serialiser reads), YAML only at the edge where people read and write files.
/// Plain scalars become numbers, booleans or null as YAML 1.2's core schema says; quoted ones stay strings.
/// </summary>
public static class YamlJson
{
    /// <summary>Every document of a (multi-document) YAML text, as JSON.</summary>
    public static IReadOnlyList<JsonNode?> ParseAll(string yaml)
    {
        var stream = new YamlStream();
        using (var reader = new StringReader(yaml)) stream.Load(reader);
        return stream.Documents.Select(d => ToJson(d.RootNode)).ToList();
    }

    /// <summary>
    /// Every document as JSON with where each value starts in the text (1-based line and column), by
    /// JSON path (<c>spec.runtime.env[0].name</c>), so that an error can point at the line a person wrote.
    /// </summary>
    public static IReadOnlyList<(JsonNode? Root, IReadOnlyDictionary<string, (long Line, long Column)> Positions)> ParseWithPositions(string yaml)
    {
        var stream = new YamlStream();
        using (var reader = new StringReader(yaml)) stream.Load(reader);
        return stream.Documents.Select(d =>
        {
            var positions = new Dictionary<string, (long, long)>(StringComparer.Ordinal);
            Mark(d.RootNode, "", positions);
            return (ToJson(d.RootNode), (IReadOnlyDictionary<string, (long, long)>)positions);
        }).ToList();
    }

    private static void Mark(YamlNode node, string path, Dictionary<string, (long, long)> positions)
    {
        switch (node)
        {
            case YamlMappingNode map:
                foreach (var (key, value) in map.Children)
                {
                    var child = path.Length == 0 ? ((YamlScalarNode)key).Value ?? "" : $"{path}.{((YamlScalarNode)key).Value}";
                    // The key's position: where the field is named, which is what a typo is.
                    positions[child] = (key.Start.Line, key.Start.Column);
                    Mark(value, child, positions);
                }
                break;
            case YamlSequenceNode seq:
                for (var i = 0; i < seq.Children.Count; i++)
                {
                    positions[$"{path}[{i}]"] = (seq.Children[i].Start.Line, seq.Children[i].Start.Column);
                    Mark(seq.Children[i], $"{path}[{i}]", positions);
                }
                break;
        }
    }

    public static string ToYaml(JsonNode? node)
    {
        var document = new YamlDocument(ToYamlNode(node));
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        new YamlStream(document).Save(new YamlDotNet.Core.Emitter(writer, new EmitterSettings().WithBestIndent(2).WithIndentedSequences()), assignAnchors: false);
        var text = writer.ToString();
        // YamlStream ends every document with "...": drop it, it is noise in files people read.
        text = text.TrimEnd();
        if (text.EndsWith("...", StringComparison.Ordinal)) text = text[..^3].TrimEnd();
        return text + "\n";
    }

    /// <summary>Documents joined by <c>---</c>.</summary>
    public static string ToYamlDocuments(IEnumerable<JsonNode?> nodes) =>
        string.Join("---\n", nodes.Select(ToYaml));

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(kv =>
            KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", ToJson(kv.Value)))),
        YamlSequenceNode seq => new JsonArray(seq.Children.Select(ToJson).ToArray()),
        YamlScalarNode scalar => Scalar(scalar),
        _ => throw new FormatException($"Unsupported YAML node at {node.Start}."),
    };

    private static JsonValue? Scalar(YamlScalarNode scalar)
    {
        var text = scalar.Value ?? "";
        if (scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded)
            return JsonValue.Create(text);
        if (text is "" or "~" or "null" or "Null" or "NULL") return null;
        if (text is "true" or "True" or "TRUE") return JsonValue.Create(true);
        if (text is "false" or "False" or "FALSE") return JsonValue.Create(false);
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer)) return JsonValue.Create(integer);
        if (LooksNumeric(text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number)) return JsonValue.Create(number);
        return JsonValue.Create(text);
    }

    private static bool LooksNumeric(string text) =>
        text.Length > 0 && (char.IsDigit(text[0]) || text[0] is '-' or '+' or '.') && text.Any(char.IsDigit) && !text.Contains(':', StringComparison.Ordinal);

    private static YamlNode ToYamlNode(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return new YamlScalarNode("null") { Style = ScalarStyle.Plain };
            case JsonObject obj:
                var map = new YamlMappingNode();
                foreach (var (key, value) in obj) map.Add(new YamlScalarNode(key), ToYamlNode(value));
                return map;
            case JsonArray array:
                return new YamlSequenceNode(array.Select(ToYamlNode));
            case JsonValue value:
                return value.GetValueKind() switch
                {
                    JsonValueKind.String => StringScalar(value.GetValue<string>()),
                    JsonValueKind.True => new YamlScalarNode("true") { Style = ScalarStyle.Plain },
                    JsonValueKind.False => new YamlScalarNode("false") { Style = ScalarStyle.Plain },
                    _ => new YamlScalarNode(value.ToJsonString()) { Style = ScalarStyle.Plain },
                };
            default:
                throw new NotSupportedException(node.GetType().Name);
        }
    }

    private static YamlScalarNode StringScalar(string text)
    {
        // Quote what a reader would otherwise take for another type, or what plain style cannot carry.
        var ambiguous = Scalar(new YamlScalarNode(text) { Style = ScalarStyle.Plain }) is not { } v || v.GetValueKind() != JsonValueKind.String;
        var special = text.Length == 0 || text.Contains('\n', StringComparison.Ordinal) || ": #'\"{}[],&*!|>%@`".Any(c => text.Contains(c, StringComparison.Ordinal))
            || char.IsWhiteSpace(text[0]) || char.IsWhiteSpace(text[^1]) || text.StartsWith('-') || text.StartsWith('?');
        return new YamlScalarNode(text) { Style = ambiguous || special ? ScalarStyle.DoubleQuoted : ScalarStyle.Plain };
    }
}
