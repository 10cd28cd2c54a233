using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Status;
using DeepSeek.Operator.Tests.Support;
using k8s;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>A model that asks for a feature the cluster's Kubernetes lacks is refused with a condition that says which and why (docs/operator.md).</summary>
public sealed class ClusterSupportTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task An_image_volume_model_on_kubernetes_1_30_is_refused_and_nothing_is_created()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.Server.KubernetesVersion = new Version(1, 30);
        harness.StartOperator("operator-a");
        var model = OperatorHarness.Model("img");
        model.Spec.Model.Source = new ModelSource { Image = new ImageModelSource { Reference = "registry.example/models/v3:fp8" } };
        await harness.CreateModelAsync(model);
        await harness.CreateModelAsync(OperatorHarness.Model("pvc"));

        await Eventually.HoldsAsync(async () => (await harness.GetModelAsync("img")).Status?.Conditions?.Any(c => c.Type == ModelConditions.Degraded && c.Reason == ModelConditions.ReasonFeatureUnsupported) == true,
            Wait, "the image-volume model is refused");
        var degraded = (await harness.GetModelAsync("img")).Status!.Conditions!.Single(c => c.Type == ModelConditions.Degraded);
        Assert.Equal("True", degraded.Status);
        Assert.Contains("model.source.image", degraded.Message, StringComparison.Ordinal);
        Assert.Contains("1.30", degraded.Message, StringComparison.Ordinal);
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Any(d => d.Metadata.Name == "pvc"), Wait, "a PVC model is served on 1.30");
        Assert.DoesNotContain((await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items, d => d.Metadata.Name == "img");
    }

    [Fact]
    public async Task On_a_cluster_older_than_the_oldest_supported_every_model_is_refused()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.Server.KubernetesVersion = new Version(1, 29);
        harness.StartOperator("operator-a");
        await harness.CreateModelAsync(OperatorHarness.Model("m"));
        await Eventually.HoldsAsync(async () => (await harness.GetModelAsync("m")).Status?.Conditions?.Any(c => c.Type == ModelConditions.Degraded && c.Reason == ModelConditions.ReasonFeatureUnsupported && c.Message.Contains("1.29", StringComparison.Ordinal)) == true,
            Wait, "refused on 1.29");
        Assert.Empty((await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items);
    }
}
