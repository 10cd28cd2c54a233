using YamlDotNet.RepresentationModel;

namespace DeepSeek.Chart.Tests.Infrastructure;

/// <summary>One rendered Kubernetes object, with small accessors over its YAML tree.</summary>
public sealed class Manifest(YamlMappingNode root)
{
    public YamlMappingNode Root { get; } = root;

    public string Kind => Manifests.Scalar(Root, "kind") ?? "";

    public string Name => Manifests.Scalar(Root, "metadata", "name") ?? "";

    public string? Namespace => Manifests.Scalar(Root, "metadata", "namespace");

    public YamlNode? At(params string[] path) => Manifests.Node(Root, path);

    public string? ScalarAt(params string[] path) => Manifests.Scalar(Root, path);

    public override string ToString() => $"{Kind} {Namespace}/{Name}";
}
