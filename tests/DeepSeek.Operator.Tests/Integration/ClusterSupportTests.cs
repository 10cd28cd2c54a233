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

    [Fact]
    public async Task An_image_volume_dropped_by_a_server_whose_gate_is_off_is_reported_not_rewritten_as_drift()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.Server.KubernetesVersion = new Version(1, 32);
        harness.Server.Store.ImageVolumeGate = false;
        harness.StartOperator("operator-a");
        var model = OperatorHarness.Model("img");
        model.Spec.Model.Source = new ModelSource { Image = new ImageModelSource { Reference = "registry.example/models/v3:fp8" } };
        await harness.CreateModelAsync(model);

        await Eventually.HoldsAsync(async () => (await harness.GetModelAsync("img")).Status?.Conditions?.Any(c => c.Type == ModelConditions.Degraded && c.Status == "True" && c.Reason == ModelConditions.ReasonFeatureUnsupported) == true,
            Wait, "the dropped image volume is reported");
        var degraded = (await harness.GetModelAsync("img")).Status!.Conditions!.Single(c => c.Type == ModelConditions.Degraded);
        Assert.Contains("ImageVolume feature gate", degraded.Message, StringComparison.Ordinal);
        Assert.Contains("1.32", degraded.Message, StringComparison.Ordinal);
        // The server did store the workload, without the volume; the operator does not write it again
        // and again (each write would be stored the same way).
        var stored = Assert.Single((await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items, d => d.Metadata.Name == "img");
        Assert.DoesNotContain(stored.Spec.Template.Spec.Volumes ?? [], v => v.Image is not null);
        var version = stored.Metadata.ResourceVersion;
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Equal(version, (await harness.Admin.AppsV1.ReadNamespacedDeploymentAsync("img", "default")).Metadata.ResourceVersion);
    }
}
