using System.Net;
using DeepSeek.Autoscaling.EndToEndTests.Infrastructure;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Status;
using k8s;
using k8s.Models;

namespace DeepSeek.Autoscaling.EndToEndTests;

/// <summary>
/// The operator against the test API server, reading GetLoad from runtime stand-ins on distinct
/// loopback addresses (one per pod IP): queue above target → scale up, capped at max with
/// ScalingLimited; queue gone → scale down after the window; events and metrics of each decision.
/// </summary>
public sealed class QueueDepthScalingTests
{
    // Generous: one poll (1 s) plus the windows, on a shared machine.
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private static V1Condition? Limited(V1Alpha1DeepSeekModel m) =>
        m.Status?.Conditions?.FirstOrDefault(c => c.Type == ModelConditions.ScalingLimited);

    [Fact]
    public async Task A_deployment_scales_up_on_the_queue_to_max_and_back_down_after_the_window()
    {
        await using var harness = await AutoscalingHarness.StartAsync();
        var replicas = new List<FakeReplica>();
        try
        {
            for (var i = 0; i < 3; i++) replicas.Add(await FakeReplica.StartAsync(IPAddress.Parse($"127.0.0.{i + 2}")));
            await using var kubelet = new PlayedKubelet(harness.Admin, "lite", i => (replicas[i].Address.ToString(), replicas[i].Port));
            harness.StartOperator();
            await harness.CreateModelAsync(AutoscalingHarness.Model("lite", max: 3, target: 2, downWindowSeconds: 3));

            await Eventually.HoldsAsync(async () => await harness.DeploymentReplicasAsync("lite") == 1, Deadline, "the Deployment starts at minReplicas 1");
            // An empty queue recommends 0: held at minReplicas, as the HPA says it.
            await Eventually.HoldsAsync(async () => replicas[0].Calls > 0 && Limited(await harness.GetModelAsync("lite")) is { Status: "True", Reason: "TooFewReplicas" }, Deadline, "the first replica is polled, held at min");

            // 10 waiting on one replica, target 2: recommends 5, max is 3.
            replicas[0].Waiting = 10;
            await Eventually.HoldsAsync(async () => await harness.DeploymentReplicasAsync("lite") == 3, Deadline, "scale up to maxReplicas 3");
            await Eventually.HoldsAsync(async () => Limited(await harness.GetModelAsync("lite")) is { Status: "True", Reason: "TooManyReplicas" }, Deadline, "ScalingLimited True at max");
            var model = await harness.GetModelAsync("lite");
            Assert.Equal(3, model.Status!.DesiredReplicas);
            Assert.NotNull(model.Status.QueueDepth);
            await Eventually.HoldsAsync(async () => (await harness.EventsAsync(ModelConditions.ReasonScaledUp)).Count > 0, Deadline, "a ScaledUp event");
            var up = Assert.Single(await harness.EventsAsync(ModelConditions.ReasonScaledUp));
            Assert.Contains("from 1 to 3", up.Message, StringComparison.Ordinal);
            Assert.Contains("maxReplicas", up.Message, StringComparison.Ordinal);
            await Eventually.HoldsAsync(async () => replicas.All(r => r.Calls > 0), Deadline, "every new replica is polled");

            // Load gone: after the 3 s window, one replica per 15 s down to minReplicas.
            foreach (var r in replicas) r.Waiting = 0;
            await Eventually.HoldsAsync(async () => await harness.DeploymentReplicasAsync("lite") == 1, Deadline, "scale down to minReplicas 1");
            // The event of a decision is written after the workload and status, so it may trail them.
            await Eventually.HoldsAsync(async () => (await harness.EventsAsync(ModelConditions.ReasonScaledDown)).Count >= 2, Deadline, "two ScaledDown events");
            var downs = await harness.EventsAsync(ModelConditions.ReasonScaledDown);
            Assert.Equal(["Scaling down from 3 to 2", "Scaling down from 2 to 1"], downs.OrderBy(e => e.FirstTimestamp).Select(e => e.Message[..24]));
            Assert.Equal(1, (await harness.GetModelAsync("lite")).Status!.DesiredReplicas);
            Assert.Equal(0, (await harness.GetModelAsync("lite")).Status!.QueueDepth);

            var metrics = await harness.ScrapeMetricsAsync();
            Assert.Contains("deepseek_operator_desired_replicas{", metrics, StringComparison.Ordinal);
            Assert.Contains("deepseek_operator_scaling_decisions_total{", metrics, StringComparison.Ordinal);
            Assert.Contains("direction=\"up\"", metrics, StringComparison.Ordinal);
            Assert.Contains("direction=\"down\"", metrics, StringComparison.Ordinal);
            Assert.DoesNotContain(harness.Server.Requests, r => r.Status == 403);
        }
        finally
        {
            foreach (var r in replicas) await r.DisposeAsync();
        }
    }

    [Fact]
    public async Task Replica_groups_are_added_and_removed_whole_from_the_highest_ordinal()
    {
        await using var harness = await AutoscalingHarness.StartAsync();
        var replicas = new List<FakeReplica>();
        try
        {
            for (var i = 0; i < 3; i++) replicas.Add(await FakeReplica.StartAsync(IPAddress.Parse($"127.0.0.{i + 12}")));
            await using var kubelet = new PlayedKubelet(harness.Admin, "v3", i => (replicas[i].Address.ToString(), replicas[i].Port));
            harness.StartOperator();
            await harness.CreateModelAsync(AutoscalingHarness.Model("v3", max: 3, target: 4, downWindowSeconds: 2, podsPerReplica: 2));
            await Eventually.HoldsAsync(async () => (await harness.GroupNamesAsync("v3")).SequenceEqual(["v3-g0"]), Deadline, "one group at minReplicas");

            // 12 waiting at the leader of g0, target 4: three groups.
            replicas[0].Waiting = 12;
            await Eventually.HoldsAsync(async () => (await harness.GroupNamesAsync("v3")).SequenceEqual(["v3-g0", "v3-g1", "v3-g2"]), Deadline, "three groups");
            var services = (await harness.Admin.CoreV1.ListNamespacedServiceAsync("default")).Items.Select(s => s.Metadata.Name).Order(StringComparer.Ordinal);
            Assert.Equal(["v3", "v3-g0", "v3-g1", "v3-g2"], services);
            await Eventually.HoldsAsync(async () => replicas.All(r => r.Calls > 0), Deadline, "every group leader is polled");

            // g2 (the highest ordinal) runs a request: the scale-down may not take it, so g1 stays too.
            replicas[0].Waiting = 0;
            replicas[2].Running = 1;
            await Eventually.HoldsAsync(async () => Limited(await harness.GetModelAsync("v3")) is { Status: "True", Reason: "ReplicasBusy" }, Deadline, "held by the busy top group");
            Assert.Equal(["v3-g0", "v3-g1", "v3-g2"], await harness.GroupNamesAsync("v3"));

            replicas[2].Running = 0;
            await Eventually.HoldsAsync(async () => (await harness.GroupNamesAsync("v3")).SequenceEqual(["v3-g0"]), Deadline, "back to one group, g0");
            var remaining = (await harness.Admin.CoreV1.ListNamespacedServiceAsync("default")).Items.Select(s => s.Metadata.Name).Order(StringComparer.Ordinal);
            Assert.Equal(["v3", "v3-g0"], remaining);
        }
        finally
        {
            foreach (var r in replicas) await r.DisposeAsync();
        }
    }

    [Fact]
    public async Task With_autoscaling_off_the_scale_subresource_drives_the_workload()
    {
        await using var harness = await AutoscalingHarness.StartAsync();
        harness.StartOperator();
        var model = AutoscalingHarness.Model("keda", max: 4, target: 2, downWindowSeconds: 300);
        model.Spec.Autoscaling.Enabled = false;
        model.Spec.Replicas = 1;
        await harness.CreateModelAsync(model);
        await Eventually.HoldsAsync(async () => await harness.DeploymentReplicasAsync("keda") == 1, Deadline, "spec.replicas 1");

        // What an HPA or KEDA does: write spec.replicas through /scale.
        var patch = new V1Patch("""{"spec":{"replicas":3}}""", V1Patch.PatchType.MergePatch);
        await harness.Admin.CustomObjects.PatchNamespacedCustomObjectScaleAsync(patch, V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, "default", V1Alpha1DeepSeekModel.Plural, "keda");
        await Eventually.HoldsAsync(async () => await harness.DeploymentReplicasAsync("keda") == 3, Deadline, "the Deployment follows /scale to 3");
        await Eventually.HoldsAsync(async () => (await harness.GetModelAsync("keda")).Status?.DesiredReplicas == 3, Deadline, "status.desiredReplicas 3");
        var status = (await harness.GetModelAsync("keda")).Status!;
        Assert.Null(status.QueueDepth);
        Assert.DoesNotContain(status.Conditions ?? [], c => c.Type == ModelConditions.ScalingLimited);
        // Pods are watched once for every model (their states explain a model that is not ready), never
        // listed per model: with autoscaling off nothing reads load either.
        Assert.DoesNotContain(harness.Server.Requests, r => r.User == "operator" && r.Resource == "pods" && (r.Verb is not ("list" or "watch") || r.Namespace is not null));
    }
}
