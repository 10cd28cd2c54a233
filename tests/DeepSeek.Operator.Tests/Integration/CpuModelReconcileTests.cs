using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Status;
using DeepSeek.Operator.Tests.Support;
using k8s;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>A model without GPUs or source, as on a kind cluster (issue 28, item 9), reconciled end to end.</summary>
public sealed class CpuModelReconcileTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_cpu_model_gets_a_cpu_deployment_of_the_cpu_image_and_its_service_and_becomes_available()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator("operator-a");
        var model = OperatorHarness.Model("demo");
        model.Spec.Model.Source = null;
        model.Spec.Runtime.GpusPerPod = 0;
        await harness.CreateModelAsync(model);

        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == 1
            && (await harness.Admin.CoreV1.ListNamespacedServiceAsync("default")).Items.Count == 1
            && (await harness.Admin.PolicyV1.ListNamespacedPodDisruptionBudgetAsync("default")).Items.Count == 1, Wait, "the children are created");
        var pod = (await harness.Admin.AppsV1.ReadNamespacedDeploymentAsync("demo", "default")).Spec.Template.Spec;
        var container = Assert.Single(pod.Containers);
        Assert.Equal("runtime:test-cpu", container.Image);
        Assert.DoesNotContain("nvidia.com/gpu", container.Resources.Limits?.Keys ?? []);
        Assert.DoesNotContain("--model", container.Args);
        Assert.DoesNotContain(pod.Volumes, v => v.Name == "model");
        Assert.Equal("cpu", (await harness.Admin.CoreV1.ReadNamespacedConfigMapAsync("demo-runtime", "default")).Data["DEEPSEEK_DEVICE"]);

        await harness.MarkDeploymentReadyAsync("demo");
        await Eventually.HoldsAsync(async () => (await harness.GetModelAsync("demo")).Status?.Conditions?.Any(c => c.Type == ModelConditions.Available && c.Status == "True") == true,
            Wait, "the model is Available");
        Assert.Equal("http://demo.default.svc:8000", (await harness.GetModelAsync("demo")).Status!.Endpoint);
        Assert.DoesNotContain(harness.Server.Requests, r => r.Status == 403);
    }
}
