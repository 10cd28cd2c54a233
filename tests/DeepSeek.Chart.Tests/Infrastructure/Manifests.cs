using YamlDotNet.RepresentationModel;

namespace DeepSeek.Chart.Tests.Infrastructure;

/// <summary>Parses <c>helm template</c> output (a multi-document YAML stream) and walks YAML trees.</summary>
public static class Manifests
{
    public static IReadOnlyList<Manifest> Parse(string yaml)
    {
        var stream = new YamlStream();
        using var reader = new StringReader(yaml);
        stream.Load(reader);
        // Documents holding only comments (a template that rendered nothing) have no mapping root.
        return [.. stream.Documents.Select(d => d.RootNode).OfType<YamlMappingNode>().Select(root => new Manifest(root))];
    }

    /// <summary>Renders the chart and parses the result; fails the test when helm fails.</summary>
    public static IReadOnlyList<Manifest> Render(IEnumerable<string>? valuesFiles = null, IEnumerable<string>? sets = null) =>
        Parse(Helm.Template(valuesFiles, sets).EnsureSuccess("helm template").StandardOutput);

    public static YamlNode? Node(YamlNode node, params string[] path)
    {
        var current = node;
        foreach (var key in path)
        {
            if (current is not YamlMappingNode mapping || !mapping.Children.TryGetValue(new YamlScalarNode(key), out var next))
            {
                return null;
            }

            current = next;
        }

        return current;
    }

    public static string? Scalar(YamlNode node, params string[] path) => (Node(node, path) as YamlScalarNode)?.Value;

    public static IReadOnlyList<YamlNode> Sequence(YamlNode node, params string[] path) =>
        Node(node, path) is YamlSequenceNode sequence ? [.. sequence.Children] : [];

    public static IReadOnlyList<string> Strings(YamlNode node, params string[] path) =>
        [.. Sequence(node, path).Select(n => ((YamlScalarNode)n).Value ?? "")];

    /// <summary>The objects of one component of the chart (their <c>app.kubernetes.io/component</c> label): <c>operator</c> or <c>gateway</c>.</summary>
    public static IReadOnlyList<Manifest> Of(this IReadOnlyList<Manifest> manifests, string component) =>
        [.. manifests.Where(m => m.ScalarAt("metadata", "labels", "app.kubernetes.io/component") == component)];

    public static Manifest Single(this IReadOnlyList<Manifest> manifests, string kind) =>
        manifests.Where(m => m.Kind == kind).ToList() switch
        {
            [var only] => only,
            var found => throw new InvalidOperationException(
                $"Expected one {kind}, found {found.Count}: {string.Join(", ", found)}"),
        };
}
