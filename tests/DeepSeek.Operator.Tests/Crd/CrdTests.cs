using System.Text.Json.Nodes;
using DeepSeek.Operator.Cli;
using DeepSeek.Operator.Crd;
using DeepSeek.Operator.Serialization;
using DeepSeek.Operator.Tests.Support;

namespace DeepSeek.Operator.Tests.Crd;

public sealed class CrdTests
{
    [Fact]
    public void Crds_folder_matches_the_crd_generated_from_the_types()
    {
        var onDisk = File.ReadAllText(RepositoryFiles.PathOf("crds", DeepSeekModelCrd.FileName));
        Assert.True(onDisk == CrdCommand.Render(),
            $"crds/{DeepSeekModelCrd.FileName} is out of date: regenerate it with `dotnet run --project operator/DeepSeek.Operator -- crd > crds/{DeepSeekModelCrd.FileName}`.");
    }

    [Fact]
    public void Crd_has_names_subresources_columns_defaults_and_cel_rules()
    {
        var crd = YamlJson.ParseAll(CrdCommand.Render())[0]!;
        var spec = crd["spec"]!;
        Assert.Equal("dsm", (string?)spec["names"]!["shortNames"]![0]);
        var version = spec["versions"]![0]!;
        Assert.Equal(".spec.replicas", (string?)version["subresources"]!["scale"]!["specReplicasPath"]);
        Assert.Equal(".status.selector", (string?)version["subresources"]!["scale"]!["labelSelectorPath"]);
        Assert.NotNull(version["subresources"]!["status"]);
        var columns = version["additionalPrinterColumns"]!.AsArray().Select(c => (string)c!["name"]!).ToList();
        Assert.Superset(new HashSet<string> { "Replicas", "Ready", "Queue", "Age" }, columns.ToHashSet());

        var modelSpec = version["schema"]!["openAPIV3Schema"]!["properties"]!["spec"]!;
        Assert.Equal("1", modelSpec["properties"]!["replicas"]!["default"]!.ToJsonString());
        Assert.Equal("1", modelSpec["properties"]!["parallelism"]!["properties"]!["podsPerReplica"]!["minimum"]!.ToJsonString());
        var rules = AllRules(modelSpec).ToList();
        Assert.Contains(rules, r => r.Contains("has(self.pvc), has(self.hostPath), has(self.image)", StringComparison.Ordinal));
        Assert.Contains(rules, r => r.Contains("self.minReplicas <= self.maxReplicas", StringComparison.Ordinal));
        Assert.Contains(rules, r => r.Contains("expertParallelSize % self.parallelism.podsPerReplica", StringComparison.Ordinal));
        Assert.Equal("The checkpoint to serve and how to present it.", (string?)modelSpec["properties"]!["model"]!["description"]);
    }

    private static IEnumerable<string> AllRules(JsonNode? node) => node switch
    {
        JsonObject o => (o["x-kubernetes-validations"] as JsonArray ?? []).Select(r => (string)r!["rule"]!)
            .Concat(o.SelectMany(kv => kv.Key == "x-kubernetes-validations" ? [] : AllRules(kv.Value))),
        JsonArray a => a.SelectMany(AllRules),
        _ => [],
    };
}
