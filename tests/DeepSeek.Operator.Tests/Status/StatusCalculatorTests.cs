using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Controller;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Status;
using DeepSeek.Operator.Tests.Desired;
using DeepSeek.Operator.Validation;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Status;

/// <summary>Available / Progressing / Degraded with their reasons and messages, and the other status fields.</summary>
public sealed class StatusCalculatorTests
{
    private static readonly DateTime Now = new(2025, 3, 1, 12, 0, 0, DateTimeKind.Utc);

    private static V1Condition Condition(DeepSeekModelStatus status, string type) => Assert.Single(status.Conditions!, c => c.Type == type);

    private static void AssertCondition(DeepSeekModelStatus status, string type, string value, string reason, string message)
    {
        var condition = Condition(status, type);
        Assert.Equal((value, reason, message), (condition.Status, condition.Reason, condition.Message));
        Assert.Equal(3, condition.ObservedGeneration);
    }

    private static WorkloadObservation Deployment(int wanted, int pods, int ready, int updated, bool upToDate = true) =>
        new("lite", wanted, pods, ready, updated, upToDate);

    [Fact]
    public void Nothing_ready_yet_is_unavailable_and_progressing()
    {
        var status = StatusCalculator.Compute(Models.SinglePod(replicas: 2), [Deployment(2, 2, 0, 2)], failure: null, Now);

        AssertCondition(status, "Available", "False", "NoReplicasReady", "0 of 2 replicas ready.");
        AssertCondition(status, "Progressing", "True", "RollingOut", "0 of 2 replicas ready on the current spec.");
        AssertCondition(status, "Degraded", "False", "AsExpected", "Workloads match the spec.");
        Assert.Equal((2, 0, 2), (status.Replicas, status.ReadyReplicas, status.DesiredReplicas));
    }

    [Fact]
    public void Workloads_not_created_yet_count_as_nothing_ready()
    {
        var status = StatusCalculator.Compute(Models.SinglePod(replicas: 2), [], failure: null, Now);
        AssertCondition(status, "Available", "False", "NoReplicasReady", "0 of 2 replicas ready.");
        Assert.Equal("True", Condition(status, "Progressing").Status);
        Assert.Equal((0, 0), (status.Replicas, status.ReadyReplicas));
    }

    [Fact]
    public void Partially_ready_is_available_and_still_progressing()
    {
        var status = StatusCalculator.Compute(Models.SinglePod(replicas: 3), [Deployment(3, 3, 1, 3)], failure: null, Now);

        AssertCondition(status, "Available", "True", "ReplicasReady", "1 of 3 replicas ready.");
        AssertCondition(status, "Progressing", "True", "RollingOut", "1 of 3 replicas ready on the current spec.");
        Assert.Equal((3, 1), (status.Replicas, status.ReadyReplicas));
    }

    [Fact]
    public void All_ready_on_the_current_spec_is_available_and_rolled_out()
    {
        var status = StatusCalculator.Compute(Models.SinglePod(replicas: 3), [Deployment(3, 3, 3, 3)], failure: null, Now);

        AssertCondition(status, "Available", "True", "ReplicasReady", "3 of 3 replicas ready.");
        AssertCondition(status, "Progressing", "False", "RolloutComplete", "All 3 replicas run the current spec and are ready.");
        AssertCondition(status, "Degraded", "False", "AsExpected", "Workloads match the spec.");
    }

    [Fact]
    public void A_workload_whose_controller_has_not_seen_the_new_spec_is_still_rolling_out()
    {
        // The Deployment reports all ready, but for the generation before: its status is stale.
        var status = StatusCalculator.Compute(Models.SinglePod(replicas: 2), [Deployment(2, 2, 2, 2, upToDate: false)], failure: null, Now);
        AssertCondition(status, "Available", "True", "ReplicasReady", "2 of 2 replicas ready.");
        AssertCondition(status, "Progressing", "True", "RollingOut", "2 of 2 replicas ready on the current spec.");
    }

    [Fact]
    public void Old_pods_still_running_during_a_rollout_keep_it_progressing()
    {
        var status = StatusCalculator.Compute(Models.SinglePod(replicas: 2), [Deployment(2, 2, 2, 1)], failure: null, Now);
        Assert.Equal("RollingOut", Condition(status, "Progressing").Reason);
    }

    [Fact]
    public void The_reconciler_sees_a_deployment_whose_observed_generation_is_behind_as_not_up_to_date()
    {
        var model = Models.SinglePod(replicas: 2);
        var desired = DesiredStateBuilder.Build(model, new OperatorDefaults());
        var deployment = KubernetesJson.Deserialize<V1Deployment>(KubernetesJson.Serialize(desired.OfType<V1Deployment>().Single()));
        deployment.Metadata.Generation = 5;
        deployment.Status = new V1DeploymentStatus { ObservedGeneration = 4, Replicas = 2, ReadyReplicas = 2, UpdatedReplicas = 2 };

        var behind = Assert.Single(ModelReconciler.Observe([deployment], desired, [], []));
        Assert.False(behind.UpToDate);
        Assert.Equal("RollingOut", Condition(StatusCalculator.Compute(model, [behind], null, Now), "Progressing").Reason);

        deployment.Status.ObservedGeneration = 5;
        var caughtUp = Assert.Single(ModelReconciler.Observe([deployment], desired, [], []));
        Assert.True(caughtUp.UpToDate);
        Assert.Equal("RolloutComplete", Condition(StatusCalculator.Compute(model, [caughtUp], null, Now), "Progressing").Reason);
    }

    [Fact]
    public void A_multi_pod_replica_is_ready_only_when_every_rank_of_its_group_is()
    {
        var model = Models.MultiPod(replicas: 2);
        var groups = new[]
        {
            new WorkloadObservation("v3-g0", 2, 2, 2, 2, true),
            new WorkloadObservation("v3-g1", 2, 2, 1, 2, true),
        };

        var status = StatusCalculator.Compute(model, groups, failure: null, Now);

        Assert.Equal((2, 1, 2), (status.Replicas, status.ReadyReplicas, status.DesiredReplicas));
        AssertCondition(status, "Available", "True", "ReplicasReady", "1 of 2 replicas ready.");
        Assert.Equal("RollingOut", Condition(status, "Progressing").Reason);

        groups[1] = groups[1] with { ReadyPods = 2 };
        var ready = StatusCalculator.Compute(model, groups, failure: null, Now);
        Assert.Equal(2, ready.ReadyReplicas);
        Assert.Equal("RolloutComplete", Condition(ready, "Progressing").Reason);
    }

    [Fact]
    public void A_group_still_missing_after_a_scale_up_keeps_the_model_progressing()
    {
        var model = Models.MultiPod(replicas: 3);
        var groups = new[] { new WorkloadObservation("v3-g0", 2, 2, 2, 2, true), new WorkloadObservation("v3-g1", 2, 2, 2, 2, true) };
        var status = StatusCalculator.Compute(model, groups, failure: null, Now);
        AssertCondition(status, "Progressing", "True", "RollingOut", "2 of 3 replicas ready on the current spec.");
    }

    [Fact]
    public void Scaled_to_zero_is_unavailable_for_that_reason()
    {
        var status = StatusCalculator.Compute(Models.SinglePod(replicas: 0), [Deployment(0, 0, 0, 0)], failure: null, Now);
        AssertCondition(status, "Available", "False", "ScaledToZero", "The model is scaled to zero replicas.");
        Assert.Equal("RolloutComplete", Condition(status, "Progressing").Reason);
    }

    [Fact]
    public void A_failed_apply_is_degraded_with_the_error_as_message()
    {
        var status = StatusCalculator.Compute(Models.SinglePod(), [], new ModelProblem(ModelConditions.ReasonReconcileFailed, "403 from the API server: forbidden"), Now);
        AssertCondition(status, "Degraded", "True", "ReconcileFailed", "403 from the API server: forbidden");
    }

    [Fact]
    public void An_invalid_spec_is_degraded_naming_the_field_and_keeps_what_was_observed_before()
    {
        var model = Models.SinglePod();
        model.Spec.Model.Source!.HostPath = new HostPathModelSource { Path = "/data" };
        model.Spec.Engine.KvCacheMemoryFraction = 1.5;
        model.Status = new DeepSeekModelStatus { Replicas = 2, ReadyReplicas = 1, Endpoint = "http://lite.serving.svc:8000" };
        var errors = ModelValidator.Validate(model);

        var status = StatusCalculator.Invalid(model, errors, Now);

        foreach (var type in new[] { "Available", "Progressing", "Degraded" })
        {
            var condition = Condition(status, type);
            Assert.Equal("InvalidSpec", condition.Reason);
            Assert.StartsWith("Invalid spec, nothing was created or changed: ", condition.Message, StringComparison.Ordinal);
            Assert.Contains("spec.model.source", condition.Message, StringComparison.Ordinal);
            Assert.Contains("spec.engine.kvCacheMemoryFraction", condition.Message, StringComparison.Ordinal);
        }
        Assert.Equal("True", Condition(status, "Degraded").Status);
        Assert.Equal("False", Condition(status, "Available").Status);
        Assert.Equal("False", Condition(status, "Progressing").Status);
        Assert.Equal((3L, 2, 1), (status.ObservedGeneration, status.Replicas, status.ReadyReplicas));
        Assert.Equal("app.kubernetes.io/name=deepseek-runtime,app.kubernetes.io/instance=lite", status.Selector);
    }

    [Fact]
    public void Observed_generation_selector_and_endpoint_follow_the_model()
    {
        var model = Models.SinglePod();
        model.Metadata.Generation = 7;
        var status = StatusCalculator.Compute(model, [], null, Now);
        Assert.Equal(7, status.ObservedGeneration);
        Assert.All(status.Conditions!, c => Assert.Equal(7, c.ObservedGeneration));
        Assert.Equal("app.kubernetes.io/name=deepseek-runtime,app.kubernetes.io/instance=lite", status.Selector);
        Assert.Equal("http://lite.serving.svc:8000", status.Endpoint);
    }

    [Fact]
    public void The_selector_selects_exactly_the_pods_the_workloads_create()
    {
        var model = Models.MultiPod();
        var selector = StatusCalculator.Compute(model, [], null, Now).Selector!
            .Split(',').Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1]);
        foreach (var set in DesiredStateBuilder.Build(model, new OperatorDefaults()).OfType<V1StatefulSet>())
            Assert.All(selector, l => Assert.Equal(l.Value, set.Spec.Template.Metadata.Labels[l.Key]));
    }

    [Fact]
    public void Transition_time_moves_only_when_a_condition_flips()
    {
        var model = Models.SinglePod(replicas: 1);
        var first = StatusCalculator.Compute(model, [Deployment(1, 1, 0, 1)], null, Now);
        model.Status = first;

        var later = Now.AddMinutes(5);
        var same = StatusCalculator.Compute(model, [Deployment(1, 1, 0, 1)], null, later);
        Assert.Equal(Now, Condition(same, "Available").LastTransitionTime);
        Assert.True(StatusCalculator.Same(first, same));

        var flipped = StatusCalculator.Compute(model, [Deployment(1, 1, 1, 1)], null, later);
        Assert.Equal(later, Condition(flipped, "Available").LastTransitionTime);
        Assert.Equal(Now, Condition(flipped, "Degraded").LastTransitionTime);
        Assert.False(StatusCalculator.Same(first, flipped));
    }

    [Fact]
    public void Conditions_written_by_others_are_kept()
    {
        var model = Models.SinglePod();
        var limited = new V1Condition { Type = "ScalingLimited", Status = "True", Reason = "AtMaxReplicas", Message = "wants 6, max 4", LastTransitionTime = Now };
        model.Status = new DeepSeekModelStatus { Conditions = [limited], QueueDepth = 12.5 };
        var status = StatusCalculator.Compute(model, [], null, Now);
        Assert.Same(limited, Condition(status, "ScalingLimited"));
        Assert.Equal(12.5, status.QueueDepth);
    }

    /// <summary>Issue 28, defect 3: a workload the API server refused (422) is not rolling out; Degraded and Progressing quote the server.</summary>
    [Fact]
    public void A_workload_the_api_server_refused_is_degraded_and_not_progressing()
    {
        const string Message = "Create of Deployment lite was refused by the API server (422): Deployment.apps \"lite\" is invalid: spec.template.spec.containers[0].image: Required value";
        var status = StatusCalculator.Compute(Models.SinglePod(replicas: 2), [], new ModelProblem(ModelConditions.ReasonWorkloadRefused, Message), Now);

        AssertCondition(status, "Progressing", "False", ModelConditions.ReasonWorkloadRefused, Message);
        AssertCondition(status, "Degraded", "True", ModelConditions.ReasonWorkloadRefused, Message);
    }
}
