using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Status;
using DeepSeek.Operator.Tests.Support;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>
/// Stuck rollouts and failing pods show in the model's conditions, in words a person reads, and
/// repeated failures make one Event with a count (issue 18, defects 5 and 6).
/// </summary>
public sealed class WorkloadConditionsTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static V1Condition? Condition(V1Alpha1DeepSeekModel m, string type) => m.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    [Fact]
    public async Task A_deployment_past_its_progress_deadline_stops_the_model_progressing_and_degrades_it()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator("operator-a");
        await harness.CreateModelAsync(OperatorHarness.Model("m"));
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == 1, Wait, "created");

        // The Deployment controller's words when progressDeadlineSeconds passes.
        var deployment = await harness.Admin.AppsV1.ReadNamespacedDeploymentAsync("m", "default");
        deployment.Status = new V1DeploymentStatus
        {
            ObservedGeneration = deployment.Metadata.Generation, Replicas = 1, UpdatedReplicas = 1, ReadyReplicas = 0,
            Conditions = [new V1DeploymentCondition { Type = "Progressing", Status = "False", Reason = "ProgressDeadlineExceeded", Message = "ReplicaSet \"m-6d4cf56db6\" has timed out progressing." }],
        };
        await harness.Admin.AppsV1.ReplaceNamespacedDeploymentStatusAsync(deployment, "m", "default");
        await harness.CreatePodAsync("m-6d4cf56db6-x1", "m", new V1ContainerStatus
        {
            Name = "runtime", Image = "runtime:test", ImageID = "", Ready = false, RestartCount = 0,
            State = new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = "ImagePullBackOff", Message = "Back-off pulling image \"runtime:test\"" } },
        });

        await Eventually.HoldsAsync(async () => Condition(await harness.GetModelAsync("m"), ModelConditions.Progressing)?.Reason == "ProgressDeadlineExceeded"
            && Condition(await harness.GetModelAsync("m"), ModelConditions.Degraded)?.Message.Contains("ImagePullBackOff", StringComparison.Ordinal) == true, Wait, "Progressing=False ProgressDeadlineExceeded, with the pod's reason");
        var model = await harness.GetModelAsync("m");
        Assert.Equal("False", Condition(model, ModelConditions.Progressing)!.Status);
        var degraded = Condition(model, ModelConditions.Degraded)!;
        Assert.Equal(("True", "ProgressDeadlineExceeded"), (degraded.Status, degraded.Reason));
        Assert.Contains("timed out progressing", degraded.Message, StringComparison.Ordinal);
        Assert.Contains("ImagePullBackOff", degraded.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_crash_looping_pod_degrades_the_model_with_the_containers_reason()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator("operator-a");
        await harness.CreateModelAsync(OperatorHarness.Model("m"));
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == 1, Wait, "created");
        await harness.CreatePodAsync("m-abc-1", "m", new V1ContainerStatus
        {
            Name = "runtime", Image = "runtime:test", ImageID = "", Ready = false, RestartCount = 4,
            State = new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = "CrashLoopBackOff", Message = "back-off 40s restarting failed container" } },
            LastState = new V1ContainerState { Terminated = new V1ContainerStateTerminated { Reason = "OOMKilled", ExitCode = 137 } },
        });
        await Eventually.HoldsAsync(async () => Condition(await harness.GetModelAsync("m"), ModelConditions.Degraded)?.Reason == "CrashLoopBackOff", Wait, "Degraded CrashLoopBackOff");
        Assert.Contains("OOMKilled", Condition(await harness.GetModelAsync("m"), ModelConditions.Degraded)!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_statefulset_that_cannot_create_pods_degrades_the_model_with_the_events_message()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator("operator-a");
        var model = OperatorHarness.Model("v3");
        model.Spec.Parallelism.PodsPerReplica = 2;
        model.Spec.Runtime.GpusPerPod = 8;
        model.Spec.Runtime.PriorityClassName = "missing";
        await harness.CreateModelAsync(model);
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedStatefulSetAsync("default")).Items.Count == 1, Wait, "group created");

        // The StatefulSet controller saw the set, created no pod, and said why in an event.
        var set = await harness.Admin.AppsV1.ReadNamespacedStatefulSetAsync("v3-g0", "default");
        await harness.Admin.CoreV1.CreateNamespacedEventAsync(new Corev1Event
        {
            Metadata = new V1ObjectMeta { Name = "v3-g0.1", NamespaceProperty = "default" },
            InvolvedObject = new V1ObjectReference { ApiVersion = "apps/v1", Kind = "StatefulSet", Name = "v3-g0", NamespaceProperty = "default", Uid = set.Metadata.Uid },
            Type = "Warning", Reason = "FailedCreate", Count = 3,
            Message = "create Pod v3-g0-0 in StatefulSet v3-g0 failed error: pods \"v3-g0-0\" is forbidden: no PriorityClass with name missing was found",
            LastTimestamp = DateTime.UtcNow,
        }, "default");
        set.Status = new V1StatefulSetStatus { ObservedGeneration = set.Metadata.Generation, Replicas = 0, ReadyReplicas = 0 };
        await harness.Admin.AppsV1.ReplaceNamespacedStatefulSetStatusAsync(set, "v3-g0", "default");

        await Eventually.HoldsAsync(async () => Condition(await harness.GetModelAsync("v3"), ModelConditions.Degraded)?.Reason == "FailedCreate", Wait, "Degraded FailedCreate");
        Assert.Contains("no PriorityClass with name missing", Condition(await harness.GetModelAsync("v3"), ModelConditions.Degraded)!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Repeated_failures_are_one_event_with_a_count_and_a_readable_message()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.Server.InjectFault("create", "deployments", 500, count: 4);
        harness.StartOperator("operator-a");
        await harness.CreateModelAsync(OperatorHarness.Model("m"));
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == 1, Wait, "created after the failures");

        // The event of the last failure is written beside the retry that succeeds: wait for its count, not for the Deployment.
        List<Corev1Event> failures = [];
        await Eventually.HoldsAsync(async () =>
        {
            failures = [.. (await harness.Admin.CoreV1.ListNamespacedEventAsync("default")).Items.Where(e => e.Reason == ModelConditions.ReasonReconcileFailed)];
            return failures.Sum(e => e.Count ?? 1) >= 4;
        }, Wait, "four failures recorded");
        var failure = Assert.Single(failures);
        Assert.Equal(4, failure.Count);
        Assert.Equal("Create of Deployment m was refused by the API server (500): injected fault 500", failure.Message);
        Assert.Contains(harness.Server.Requests, r => r.Resource == "events" && r.Verb == "patch" && r.Status == 200);
    }
}
