using System.Text.RegularExpressions;
using System.Xml.Linq;
using DeepSeek.Chart.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace DeepSeek.Chart.Tests.Chart;

public sealed class ChartMetadataTests
{
    [Fact]
    public void Chart_version_and_app_version_are_the_projects_version()
    {
        var projectVersion = XDocument.Load(Repository.PathOf("Directory.Build.props"))
            .Descendants("Version").Single().Value;
        var chart = LoadYaml(Path.Combine(Repository.ChartDirectory, "Chart.yaml"));

        Assert.Equal("v2", Manifests.Scalar(chart, "apiVersion"));
        Assert.Equal(projectVersion, Manifests.Scalar(chart, "version"));
        Assert.Equal(projectVersion, Manifests.Scalar(chart, "appVersion"));
    }

    /// <summary>
    /// Helm refuses the chart below the same Kubernetes release the operator refuses to run models on
    /// (<c>ClusterFeatures.OldestSupported</c>, read from its source so this project needs no reference to the operator).
    /// </summary>
    [Fact]
    public void Chart_kube_version_floor_is_the_operators_oldest_supported_release()
    {
        var source = File.ReadAllText(Repository.PathOf("operator", "DeepSeek.Operator", "Cluster", "ClusterFeatures.cs"));
        var floor = Regex.Match(source, @"Version OldestSupported = new\((\d+), (\d+)\);");
        Assert.True(floor.Success, "ClusterFeatures.cs no longer declares OldestSupported as new(major, minor); update this test.");
        var chart = LoadYaml(Path.Combine(Repository.ChartDirectory, "Chart.yaml"));

        Assert.Equal($">={floor.Groups[1].Value}.{floor.Groups[2].Value}.0-0", Manifests.Scalar(chart, "kubeVersion"));
    }

    /// <summary>
    /// The chart ships the repository's CRDs (generated from the operator's C# types) byte for byte. Copy
    /// them over after regenerating: <c>cp crds/*.yaml charts/deepseek-operator/crds/</c>.
    /// </summary>
    [Fact]
    public void Chart_crds_are_byte_identical_copies_of_the_repository_crds()
    {
        var repositoryCrds = YamlFiles(Repository.PathOf("crds"));
        Assert.True(
            repositoryCrds.Count > 0,
            "crds/ at the repository root holds no *.yaml: the operator's CRDs must exist before the chart can ship them.");
        var chartCrds = YamlFiles(Path.Combine(Repository.ChartDirectory, "crds"));

        Assert.True(
            repositoryCrds.Keys.Order(StringComparer.Ordinal).SequenceEqual(chartCrds.Keys.Order(StringComparer.Ordinal)),
            $"charts/deepseek-operator/crds/ has [{string.Join(", ", chartCrds.Keys)}], crds/ has [{string.Join(", ", repositoryCrds.Keys)}]. "
            + "Run: cp crds/*.yaml charts/deepseek-operator/crds/");
        foreach (var (name, path) in repositoryCrds)
        {
            Assert.True(
                File.ReadAllBytes(path).AsSpan().SequenceEqual(File.ReadAllBytes(chartCrds[name])),
                $"charts/deepseek-operator/crds/{name} differs from crds/{name}. Run: cp crds/*.yaml charts/deepseek-operator/crds/");
        }
    }

    private static Dictionary<string, string> YamlFiles(string directory) =>
        Directory.Exists(directory)
            ? Directory.EnumerateFiles(directory)
                .Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal))
                .ToDictionary(f => Path.GetFileName(f), f => f, StringComparer.Ordinal)
            : [];

    private static YamlNode LoadYaml(string path)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(path);
        stream.Load(reader);
        return stream.Documents[0].RootNode;
    }
}
