using System.Text.Json.Nodes;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Cli;
using DeepSeek.Operator.Crd;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Serialization;
using DeepSeek.Operator.Tests.Support;
using DeepSeek.Operator.Validation;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Crd;

public sealed class SampleTests
{
    private static readonly string[] FileNames =
    [
        "serving_v1alpha1_deepseekmodel_v2lite.yaml",
        "serving_v1alpha1_deepseekmodel_v3_expert_parallel.yaml",
        "serving_v1alpha1_deepseekmodel_autoscaled.yaml",
        "serving_v1alpha1_deepseekmodel_cpu.yaml",
    ];

    public static TheoryData<string> Samples => new(FileNames);

    /// <summary>The operator's image defaults, as the chart passes them (--runtime-image, --cpu-runtime-image).</summary>
    private static readonly OperatorDefaults Defaults = new() { RuntimeImage = "runtime:test", CpuRuntimeImage = "runtime:test-cpu" };

    [Fact]
    public void Every_sample_is_tested()
    {
        var onDisk = Directory.EnumerateFiles(RepositoryFiles.PathOf("samples"), "*.yaml").Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(FileNames.Order(StringComparer.Ordinal), onDisk);
    }

    private static JsonObject Schema() =>
        DeepSeekModelCrd.Generate()["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!.AsObject();

    [Theory]
    [MemberData(nameof(Samples))]
    public void Sample_is_valid_against_the_crd_schema_and_the_cel_rules(string file)
    {
        var node = YamlJson.ParseAll(File.ReadAllText(RepositoryFiles.PathOf("samples", file)))[0]!;
        Assert.Empty(SchemaCheck.Validate(node, Schema()));
        var model = KubernetesJson.Deserialize<V1Alpha1DeepSeekModel>(node.ToJsonString());
        Assert.Empty(ModelValidator.Validate(model, Defaults));
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void Sample_renders_into_owned_labelled_hardened_workloads(string file)
    {
        var manifest = File.ReadAllText(RepositoryFiles.PathOf("samples", file));
        var gpus = KubernetesJson.Deserialize<V1Alpha1DeepSeekModel>(YamlJson.ParseAll(manifest)[0]!.ToJsonString()).Spec.Runtime.GpusPerPod;
        var (yaml, errors) = RenderCommand.Render(manifest, Defaults);
        Assert.Empty(errors);
        var documents = YamlJson.ParseAll(yaml!);
        Assert.Contains(documents, d => (string?)d!["kind"] is "Deployment" or "StatefulSet");
        foreach (var doc in documents)
        {
            Assert.Equal("deepseek-operator", (string?)doc!["metadata"]!["labels"]![ModelLabels.ManagedBy]);
            Assert.NotNull(doc["metadata"]!["labels"]![ModelLabels.Instance]);
            Assert.NotNull(doc["metadata"]!["labels"]![ModelLabels.Name]);
        }
        foreach (var workload in documents.Where(d => (string?)d!["kind"] is "Deployment" or "StatefulSet"))
        {
            var container = workload!["spec"]!["template"]!["spec"]!["containers"]![0]!;
            Assert.Equal(false, (bool?)container["securityContext"]!["allowPrivilegeEscalation"]);
            Assert.Equal(true, (bool?)container["securityContext"]!["readOnlyRootFilesystem"]);
            Assert.Equal("ALL", (string?)container["securityContext"]!["capabilities"]!["drop"]![0]);
            Assert.Equal(gpus > 0, container["resources"]!["limits"]?["nvidia.com/gpu"] is not null);
            foreach (var init in workload["spec"]!["template"]!["spec"]!["initContainers"]?.AsArray() ?? [])
            {
                Assert.Equal(false, (bool?)init!["securityContext"]!["allowPrivilegeEscalation"]);
                Assert.Equal(true, (bool?)init["securityContext"]!["readOnlyRootFilesystem"]);
                Assert.Equal("ALL", (string?)init["securityContext"]!["capabilities"]!["drop"]![0]);
            }
        }
    }

    [Fact]
    public void The_v2lite_sample_downloads_its_weights_into_its_claim_before_the_runtime_starts()
    {
        var (yaml, errors) = RenderCommand.Render(File.ReadAllText(RepositoryFiles.PathOf("samples", "serving_v1alpha1_deepseekmodel_v2lite.yaml")), new OperatorDefaults { RuntimeImage = "runtime:test" });
        Assert.Empty(errors);
        var pod = YamlJson.ParseAll(yaml!).Single(d => (string?)d!["kind"] == "Deployment")!["spec"]!["template"]!["spec"]!;
        var init = pod["initContainers"]!.AsArray().Single()!;
        Assert.Equal(["download", "deepseek-ai/DeepSeek-V2-Lite-Chat", "--revision", "main", "--output", "/claim/DeepSeek-V2-Lite-Chat", "--skip-if-complete"],
            init["args"]!.AsArray().Select(a => (string)a!));
        Assert.Equal("runtime:test", (string?)init["image"]);
    }

    [Fact]
    public void The_cpu_sample_runs_the_cpu_images_embedded_model_without_gpus_and_autoscales()
    {
        var (yaml, errors) = RenderCommand.Render(File.ReadAllText(RepositoryFiles.PathOf("samples", "serving_v1alpha1_deepseekmodel_cpu.yaml")), Defaults);
        Assert.Empty(errors);
        var documents = YamlJson.ParseAll(yaml!);
        Assert.Equal("cpu", (string?)documents.Single(d => (string?)d!["kind"] == "ConfigMap")!["data"]!["DEEPSEEK_DEVICE"]);
        var pod = documents.Single(d => (string?)d!["kind"] == "Deployment")!["spec"]!["template"]!["spec"]!;
        var container = pod["containers"]![0]!;
        Assert.Equal("runtime:test-cpu", (string?)container["image"]);
        Assert.DoesNotContain("--model", container["args"]!.AsArray().Select(a => (string)a!));
        Assert.Null(container["resources"]!["limits"]);
        Assert.Null(pod["nodeSelector"]);
        Assert.Null(pod["tolerations"]);
        Assert.Contains(documents, d => (string?)d!["kind"] == "Service");
        var model = KubernetesJson.Deserialize<V1Alpha1DeepSeekModel>(YamlJson.ParseAll(File.ReadAllText(RepositoryFiles.PathOf("samples", "serving_v1alpha1_deepseekmodel_cpu.yaml")))[0]!.ToJsonString());
        Assert.True(model.Spec.Autoscaling.Enabled);
    }

    [Fact]
    public void The_expert_parallel_sample_renders_its_group_token_secret_first_and_without_a_value()
    {
        var (yaml, errors) = RenderCommand.Render(File.ReadAllText(RepositoryFiles.PathOf("samples", "serving_v1alpha1_deepseekmodel_v3_expert_parallel.yaml")), new OperatorDefaults { RuntimeImage = "runtime:test" });
        Assert.Empty(errors);
        var documents = YamlJson.ParseAll(yaml!);
        var secret = Assert.Single(documents, d => (string?)d!["kind"] == "Secret")!;
        Assert.Same(secret, documents[0]);
        Assert.EndsWith("-ep-group-token", (string?)secret["metadata"]!["name"], StringComparison.Ordinal);
        Assert.Null(secret["data"]);
        Assert.Equal(true, (bool?)secret["immutable"]);
    }

    [Fact]
    public void Render_names_the_offending_field_of_an_invalid_manifest()
    {
        var manifest = File.ReadAllText(RepositoryFiles.PathOf("samples", "serving_v1alpha1_deepseekmodel_autoscaled.yaml"))
            .Replace("minReplicas: 1", "minReplicas: 9", StringComparison.Ordinal);
        var (yaml, errors) = RenderCommand.Render(manifest, new OperatorDefaults { RuntimeImage = "runtime:test" });
        Assert.Null(yaml);
        Assert.Contains(errors, e => e.Field == "spec.autoscaling.minReplicas");
    }

    [Fact]
    public void Render_without_uid_has_no_owner_references_and_with_uid_points_at_the_model()
    {
        var manifest = File.ReadAllText(RepositoryFiles.PathOf("samples", "serving_v1alpha1_deepseekmodel_v2lite.yaml"));
        var withUid = manifest.Replace("  namespace: default", "  namespace: default\n  uid: 0f1e2d3c-aaaa-bbbb-cccc-000000000001", StringComparison.Ordinal);
        var plain = YamlJson.ParseAll(RenderCommand.Render(manifest, new OperatorDefaults { RuntimeImage = "x" }).Yaml!);
        var owned = YamlJson.ParseAll(RenderCommand.Render(withUid, new OperatorDefaults { RuntimeImage = "x" }).Yaml!);
        Assert.All(plain, d => Assert.Null(d!["metadata"]!["ownerReferences"]));
        Assert.All(owned, d => Assert.Equal("0f1e2d3c-aaaa-bbbb-cccc-000000000001", (string?)d!["metadata"]!["ownerReferences"]![0]!["uid"]));
    }
}
