using System.Text.Json.Nodes;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Serialization;
using DeepSeek.Operator.Tests.Support;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Crd;

/// <summary>
/// samples/prerequisites/ holds what a sample needs that nobody else creates. Each object must be a valid
/// object of its kind (it reads into the client's typed model and writes back field for field, so a
/// misspelt or misplaced field fails), and must be the object the sample refers to.
/// </summary>
public sealed class SamplePrerequisiteTests
{
    /// <summary>The kinds the prerequisites use: their apiVersion and the client's typed read.</summary>
    private static readonly Dictionary<string, (string ApiVersion, Func<string, object> Read)> Kinds = new(StringComparer.Ordinal)
    {
        ["PersistentVolumeClaim"] = ("v1", json => KubernetesJson.Deserialize<V1PersistentVolumeClaim>(json)),
        ["Namespace"] = ("v1", json => KubernetesJson.Deserialize<V1Namespace>(json)),
        ["PriorityClass"] = ("scheduling.k8s.io/v1", json => KubernetesJson.Deserialize<V1PriorityClass>(json)),
    };

    private static readonly string[] FileNames = ["v2lite.yaml", "v3_expert_parallel.yaml"];

    public static TheoryData<string> Files => new(FileNames);

    [Fact]
    public void Every_prerequisites_file_is_tested()
    {
        var onDisk = Directory.EnumerateFiles(RepositoryFiles.PathOf("samples", "prerequisites"), "*.yaml").Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(FileNames.Order(StringComparer.Ordinal), onDisk);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Prerequisite_objects_are_valid_objects_of_their_kind(string file)
    {
        var documents = Prerequisites(file);
        Assert.NotEmpty(documents);
        foreach (var document in documents)
        {
            var kind = (string?)document["kind"];
            Assert.True(kind is not null && Kinds.ContainsKey(kind), $"{file}: kind {kind} is not one this test knows; add its client type.");
            var (apiVersion, read) = Kinds[kind!];
            Assert.Equal(apiVersion, (string?)document["apiVersion"]);
            Assert.False(string.IsNullOrEmpty((string?)document["metadata"]?["name"]), $"{file}: a {kind} without a name");

            var typed = read(document.ToJsonString());
            var written = JsonNode.Parse(KubernetesJson.Serialize(typed))!;
            Assert.True(JsonNode.DeepEquals(document, written),
                $"{file}: the {kind} does not read back as written (a field its kind lacks, or a value of the wrong type):\n{document.ToJsonString()}\n{written.ToJsonString()}");
        }
    }

    [Fact]
    public void The_v2lite_claim_is_the_samples_claim_in_its_namespace_and_holds_the_checkpoint()
    {
        var model = Sample("serving_v1alpha1_deepseekmodel_v2lite.yaml");
        var claim = Assert.Single(Prerequisites("v2lite.yaml"), d => (string?)d["kind"] == "PersistentVolumeClaim");
        var pvc = KubernetesJson.Deserialize<V1PersistentVolumeClaim>(claim.ToJsonString());

        Assert.Equal(model.Spec.Model.Source!.Pvc!.ClaimName, pvc.Metadata.Name);
        Assert.Equal(model.Metadata.NamespaceProperty, pvc.Metadata.NamespaceProperty);
        // V2-Lite-Chat in bf16: 15.7 B parameters × 2 bytes.
        Assert.True(pvc.Spec.Resources.Requests["storage"].ToDecimal() >= 31.4e9m, "the claim cannot hold DeepSeek-V2-Lite-Chat's 31.4 GB");
        Assert.Contains("ReadWriteOnce", pvc.Spec.AccessModes);
    }

    [Fact]
    public void The_v3_prerequisites_create_the_samples_namespace_and_priority_class_and_say_how_to_make_its_secret()
    {
        var file = "serving_v1alpha1_deepseekmodel_v3_expert_parallel.yaml";
        var model = Sample(file);
        var documents = Prerequisites("v3_expert_parallel.yaml");

        Assert.Contains(documents, d => (string?)d["kind"] == "Namespace" && (string?)d["metadata"]!["name"] == model.Metadata.NamespaceProperty);
        Assert.Contains(documents, d => (string?)d["kind"] == "PriorityClass" && (string?)d["metadata"]!["name"] == model.Spec.Runtime.PriorityClassName);

        var secret = model.Spec.Engine.ApiKeySecretRef!;
        var command = $"kubectl create secret generic {secret.Name} -n {model.Metadata.NamespaceProperty} --from-literal={secret.Key ?? EngineSpec.DefaultApiKeyKey}=";
        Assert.Contains(command, File.ReadAllText(RepositoryFiles.PathOf("samples", file)), StringComparison.Ordinal);
        Assert.Contains(command, File.ReadAllText(RepositoryFiles.PathOf("samples", "prerequisites", "v3_expert_parallel.yaml")), StringComparison.Ordinal);
    }

    private static List<JsonNode> Prerequisites(string file) =>
        [.. YamlJson.ParseAll(File.ReadAllText(RepositoryFiles.PathOf("samples", "prerequisites", file))).OfType<JsonNode>()];

    private static V1Alpha1DeepSeekModel Sample(string file) =>
        KubernetesJson.Deserialize<V1Alpha1DeepSeekModel>(YamlJson.ParseAll(File.ReadAllText(RepositoryFiles.PathOf("samples", file)))[0]!.ToJsonString());
}
