using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Status;
using DeepSeek.Operator.Tests.Support;
using k8s;

namespace DeepSeek.Operator.Tests.Integration;

public sealed class ReconcileTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static bool Condition(V1Alpha1DeepSeekModel m, string type, string status) =>
        m.Status?.Conditions?.Any(c => c.Type == type && c.Status == status) == true;

    [Fact]
    public async Task Create_update_and_delete_follow_the_model()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator("operator-a");
        await harness.CreateModelAsync(OperatorHarness.Model("v2lite"));

        // The reconciler creates the children one after another: wait for the last of them, then
        // check there is exactly one of each.
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == 1
            && (await harness.Admin.CoreV1.ListNamespacedServiceAsync("default")).Items.Count > 0
            && (await harness.Admin.CoreV1.ListNamespacedConfigMapAsync("default")).Items.Count > 0
            && (await harness.Admin.PolicyV1.ListNamespacedPodDisruptionBudgetAsync("default")).Items.Count > 0, Wait, "the children are created");
        Assert.Single((await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items);
        Assert.Single((await harness.Admin.CoreV1.ListNamespacedServiceAsync("default")).Items);
        Assert.Single((await harness.Admin.CoreV1.ListNamespacedConfigMapAsync("default")).Items);
        Assert.Single((await harness.Admin.PolicyV1.ListNamespacedPodDisruptionBudgetAsync("default")).Items);

        await harness.MarkDeploymentReadyAsync("v2lite");
        await Eventually.HoldsAsync(async () => Condition(await harness.GetModelAsync("v2lite"), ModelConditions.Available, "True"), Wait, "the model is Available");
        var model = await harness.GetModelAsync("v2lite");
        Assert.Equal(1, model.Status!.ReadyReplicas);
        Assert.Equal("http://v2lite.default.svc:8000", model.Status.Endpoint);

        // Spec change: the Deployment is updated and observedGeneration follows the new generation.
        model.Spec.Replicas = 3;
        await harness.ReplaceModelAsync(model);
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ReadNamespacedDeploymentAsync("v2lite", "default")).Spec.Replicas == 3, Wait, "the Deployment gets 3 replicas");
        await Eventually.HoldsAsync(async () => (await harness.GetModelAsync("v2lite")) is { Metadata.Generation: 2, Status.ObservedGeneration: 2 }, Wait, "observedGeneration follows");
        await harness.MarkDeploymentReadyAsync("v2lite");
        await Eventually.HoldsAsync(async () => (await harness.GetModelAsync("v2lite")).Status?.ReadyReplicas == 3, Wait, "3 replicas ready");

        // No real change: nothing is written again.
        var updatesBefore = harness.Server.Requests.Count(r => r.User == "operator-a" && r.Verb == "update" && r.Resource == "deployments");
        await harness.MarkDeploymentReadyAsync("v2lite");
        await Eventually.HoldsAsync(async () => Condition(await harness.GetModelAsync("v2lite"), ModelConditions.Progressing, "False"), Wait, "rollout complete");
        Assert.Equal(updatesBefore, harness.Server.Requests.Count(r => r.User == "operator-a" && r.Verb == "update" && r.Resource == "deployments"));

        await harness.Admin.CustomObjects.DeleteNamespacedCustomObjectAsync(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, "default", V1Alpha1DeepSeekModel.Plural, "v2lite");
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == 0
            && (await harness.Admin.CoreV1.ListNamespacedServiceAsync("default")).Items.Count == 0
            && (await harness.Admin.CoreV1.ListNamespacedConfigMapAsync("default")).Items.Count == 0, Wait, "children are gone");
        Assert.DoesNotContain(harness.Server.Requests, r => r.Status == 403);
    }

    [Fact]
    public async Task Multi_pod_groups_become_statefulsets_with_headless_services()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator("operator-a");
        var model = OperatorHarness.Model("v3", replicas: 2);
        model.Spec.Parallelism.PodsPerReplica = 2;
        model.Spec.Runtime.GpusPerPod = 8;
        await harness.CreateModelAsync(model);
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedStatefulSetAsync("default")).Items.Count == 2, Wait, "two group StatefulSets");
        var sets = (await harness.Admin.AppsV1.ListNamespacedStatefulSetAsync("default")).Items.OrderBy(s => s.Metadata.Name).ToList();
        Assert.Equal(["v3-g0", "v3-g1"], sets.Select(s => s.Metadata.Name));
        Assert.All(sets, s => Assert.Equal(s.Metadata.Name, s.Spec.ServiceName));
        var services = (await harness.Admin.CoreV1.ListNamespacedServiceAsync("default")).Items.Select(s => s.Metadata.Name).Order().ToList();
        Assert.Equal(["v3", "v3-g0", "v3-g1"], services);
        Assert.Empty((await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items);
    }

    [Fact]
    public async Task An_invalid_model_is_degraded_with_the_field_named_and_nothing_is_created()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator("operator-a");
        var model = OperatorHarness.Model("broken");
        model.Spec.Model.Source!.HostPath = new HostPathModelSource { Path = "/models/x" }; // two sources
        await harness.CreateModelAsync(model);
        await Eventually.HoldsAsync(async () => Condition(await harness.GetModelAsync("broken"), ModelConditions.Degraded, "True"), Wait, "Degraded");
        var degraded = (await harness.GetModelAsync("broken")).Status!.Conditions!.Single(c => c.Type == ModelConditions.Degraded);
        Assert.Equal(ModelConditions.ReasonInvalidSpec, degraded.Reason);
        Assert.Contains("spec.model.source", degraded.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(harness.Server.Requests, r => r.User == "operator-a" && r.Verb == "create" && r.Resource != "events");
    }

    [Fact]
    public async Task Dropped_watches_conflicts_and_server_errors_still_converge_without_duplicates()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.Server.InjectFault("create", "deployments", 500, count: 2);
        harness.Server.InjectFault("update", "deepseekmodels/status", 409, count: 2);
        harness.StartOperator("operator-a");
        await harness.CreateModelAsync(OperatorHarness.Model("flaky"));
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == 1, Wait, "Deployment created despite 500s");

        harness.Server.Store.DropWatches();
        harness.Server.Store.Compact(); // resuming watches now get 410 and must list again
        await harness.MarkDeploymentReadyAsync("flaky");
        await Eventually.HoldsAsync(async () => Condition(await harness.GetModelAsync("flaky"), ModelConditions.Available, "True"), Wait, "Available after dropped watches and 409s");

        Assert.Contains(harness.Server.Requests, r => r.Resource == "deployments" && r.Status == 500);
        Assert.Contains(harness.Server.Requests, r => r.Resource == "deepseekmodels/status" && r.Status == 409);
        Assert.Single((await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items);
        Assert.Single((await harness.Admin.CoreV1.ListNamespacedServiceAsync("default")).Items);
        Assert.Single((await harness.Admin.CoreV1.ListNamespacedConfigMapAsync("default")).Items);
    }

    [Fact]
    public async Task Only_the_leader_acts_and_the_other_takes_over_within_the_lease_duration()
    {
        await using var harness = await OperatorHarness.StartAsync();
        var lease = new Leadership.LeaderElectionSettings
        {
            LeaseDuration = TimeSpan.FromSeconds(3),
            RenewDeadline = TimeSpan.FromSeconds(2),
            RetryPeriod = TimeSpan.FromMilliseconds(300),
        };
        var (stopA, runA) = harness.StartOperator("operator-a", lease, leaderElect: true);
        await Eventually.HoldsAsync(async () => (await harness.Admin.CoordinationV1.ReadNamespacedLeaseAsync(lease.LeaseName, "default")).Spec.HolderIdentity == "operator-a", Wait, "a leads");
        harness.StartOperator("operator-b", lease, leaderElect: true);

        await harness.CreateModelAsync(OperatorHarness.Model("first"));
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == 1, Wait, "a reconciles");
        Assert.All(harness.Server.Requests.Where(r => r.User == "operator-b"), r => Assert.Equal("leases", r.Resource));

        await stopA.CancelAsync();
        await runA.WaitAsync(Wait);
        var stopped = DateTime.UtcNow;
        await Eventually.HoldsAsync(async () => (await harness.Admin.CoordinationV1.ReadNamespacedLeaseAsync(lease.LeaseName, "default")).Spec.HolderIdentity == "operator-b", lease.LeaseDuration, "b takes over within the lease duration");
        await harness.CreateModelAsync(OperatorHarness.Model("second"));
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == 2, Wait, "b reconciles");
        Assert.Contains(harness.Server.Requests, r => r.User == "operator-b" && r.Verb == "create" && r.Resource == "deployments" && r.At > stopped);
        Assert.DoesNotContain(harness.Server.Requests, r => r.User == "operator-a" && r.Resource == "deployments" && r.At > stopped);
    }
}
