using DeepSeek.Operator.Desired;
using k8s;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>
/// Issue 28, defect 2: a child whose instance label someone changed is still its model's (its controller
/// owner reference says so). It was lost from the model's view, and every reconcile tried to create it
/// again (409 AlreadyExists) while the status said the workloads matched.
/// </summary>
public sealed class AdoptionTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_child_whose_instance_label_was_changed_is_adopted_back_by_its_owner_reference()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator("operator-a");
        await harness.CreateModelAsync(OperatorHarness.Model("m"));
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == 1, Wait, "the Deployment is created");

        var deployment = await harness.Admin.AppsV1.ReadNamespacedDeploymentAsync("m", "default");
        deployment.Metadata.Labels[ModelLabels.Instance] = "someone-else";
        await harness.Admin.AppsV1.ReplaceNamespacedDeploymentAsync(deployment, "m", "default");

        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ReadNamespacedDeploymentAsync("m", "default")).Metadata.Labels[ModelLabels.Instance] == "m",
            Wait, "the instance label is restored");
        await harness.MarkDeploymentReadyAsync("m");
        await Eventually.HoldsAsync(async () => (await harness.GetModelAsync("m")).Status?.ReadyReplicas == 1, Wait, "the model sees its Deployment again");
        Assert.DoesNotContain(harness.Server.Requests, r => r.User == "operator-a" && r.Verb == "create" && r.Status == 409);
        Assert.Single((await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items);
    }
}
