using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Validation;
using k8s.Models;

namespace DeepSeek.Operator.Status;

/// <summary>A model's status from what was observed: a pure function, time passed in.</summary>
public static class StatusCalculator
{
    /// <summary>Status of a model whose workloads exist (or are being created).</summary>
    /// <param name="model">The model as read, with its previous status.</param>
    /// <param name="workloads">The Deployment, or one StatefulSet per existing replica group.</param>
    /// <param name="failure">Why the operator could not make the workloads match the spec, if it could not.</param>
    /// <param name="now">The time of this observation.</param>
    /// <param name="degraded">A problem that does not stop the rollout but must be fixed (a group token Secret the operator cannot use): Degraded only.</param>
    public static DeepSeekModelStatus Compute(V1Alpha1DeepSeekModel model, IReadOnlyList<WorkloadObservation> workloads, ModelProblem? failure, DateTime now, ModelProblem? degraded = null)
    {
        var shape = ModelShape.Of(model);
        int replicas, ready;
        bool rolledOut;
        if (shape.IsMultiPod)
        {
            replicas = workloads.Count;
            ready = workloads.Count(w => w.ReadyPods >= shape.PodsPerReplica);
            rolledOut = workloads.Count == shape.Replicas && workloads.All(w => w.UpToDate && w.UpdatedPods >= shape.PodsPerReplica && w.ReadyPods >= shape.PodsPerReplica);
        }
        else
        {
            var deployment = workloads.Count > 0 ? workloads[0] : null;
            replicas = deployment?.Pods ?? 0;
            ready = deployment?.ReadyPods ?? 0;
            rolledOut = deployment is not null && deployment.UpToDate && deployment.UpdatedPods >= shape.Replicas && deployment.ReadyPods >= shape.Replicas && deployment.Pods == shape.Replicas;
        }

        var previous = model.Status?.Conditions ?? [];
        var generation = model.Metadata.Generation;
        var conditions = new List<V1Condition>
        {
            shape.Replicas == 0
                ? Condition(previous, ModelConditions.Available, ModelConditions.False, ModelConditions.ReasonScaledToZero, "The model is scaled to zero replicas.", generation, now)
                : ready > 0
                    ? Condition(previous, ModelConditions.Available, ModelConditions.True, ModelConditions.ReasonReplicasReady, $"{ready} of {shape.Replicas} replicas ready.", generation, now)
                    : Condition(previous, ModelConditions.Available, ModelConditions.False, ModelConditions.ReasonNoReplicasReady, $"0 of {shape.Replicas} replicas ready.", generation, now),
            // A write the API server refused (422 WorkloadRefused) rolls nothing out until the spec changes: saying
            // RollingOut then would have people wait for a rollout that never starts.
            failure is not null
                ? Condition(previous, ModelConditions.Progressing, ModelConditions.False, failure.Reason, failure.Message, generation, now)
                : workloads.FirstOrDefault(w => w.Stuck) is { Problem: { } stuck }
                ? Condition(previous, ModelConditions.Progressing, ModelConditions.False, stuck.Reason, stuck.Message, generation, now)
                : rolledOut
                ? Condition(previous, ModelConditions.Progressing, ModelConditions.False, ModelConditions.ReasonRolloutComplete, $"All {shape.Replicas} replicas run the current spec and are ready.", generation, now)
                : Condition(previous, ModelConditions.Progressing, ModelConditions.True, ModelConditions.ReasonRollingOut, $"{ready} of {shape.Replicas} replicas ready on the current spec.", generation, now),
            (failure ?? degraded ?? Worst(workloads)) is { } problem
                ? Condition(previous, ModelConditions.Degraded, ModelConditions.True, problem.Reason, problem.Message, generation, now)
                : Condition(previous, ModelConditions.Degraded, ModelConditions.False, ModelConditions.ReasonAsExpected, "Workloads match the spec.", generation, now),
        };
        KeepOthers(previous, conditions);
        return new DeepSeekModelStatus
        {
            ObservedGeneration = generation,
            Replicas = replicas,
            ReadyReplicas = ready,
            DesiredReplicas = shape.Replicas,
            QueueDepth = model.Status?.QueueDepth,
            Selector = ModelLabels.SelectorString(model.Metadata.Name),
            Endpoint = DesiredStateBuilder.Endpoint(model),
            Adapters = AdapterNames(model),
            Conditions = conditions,
        };
    }

    /// <summary>The first workload's problem, saying how many others have one.</summary>
    private static ModelProblem? Worst(IReadOnlyList<WorkloadObservation> workloads)
    {
        var problems = workloads.Where(w => w.Problem is not null).Select(w => w.Problem!).ToList();
        if (problems.Count == 0) return null;
        return problems.Count == 1 ? problems[0] : problems[0] with { Message = $"{problems[0].Message} (and {problems.Count - 1} more replica groups with problems)" };
    }

    /// <summary>Status of a model the cluster cannot run (a feature it lacks): nothing is created, Degraded says what is missing.</summary>
    public static DeepSeekModelStatus Refused(V1Alpha1DeepSeekModel model, ModelProblem problem, DateTime now)
    {
        ArgumentNullException.ThrowIfNull(problem);
        var status = Invalid(model, [], now);
        var previous = model.Status?.Conditions ?? [];
        var generation = model.Metadata.Generation;
        status.Conditions = status.Conditions!.Select(c => c.Type is ModelConditions.Available or ModelConditions.Progressing or ModelConditions.Degraded
            ? Condition(previous, c.Type, c.Type == ModelConditions.Degraded ? ModelConditions.True : ModelConditions.False, problem.Reason, problem.Message, generation, now)
            : c).ToList();
        return status;
    }

    /// <summary>Status of a model that fails validation: nothing is created, Degraded names the fields.</summary>
    public static DeepSeekModelStatus Invalid(V1Alpha1DeepSeekModel model, IReadOnlyList<FieldError> errors, DateTime now)
    {
        var previous = model.Status?.Conditions ?? [];
        var generation = model.Metadata.Generation;
        var message = "Invalid spec, nothing was created or changed: " + string.Join("; ", errors);
        var conditions = new List<V1Condition>
        {
            Condition(previous, ModelConditions.Available, ModelConditions.False, ModelConditions.ReasonInvalidSpec, message, generation, now),
            Condition(previous, ModelConditions.Progressing, ModelConditions.False, ModelConditions.ReasonInvalidSpec, message, generation, now),
            Condition(previous, ModelConditions.Degraded, ModelConditions.True, ModelConditions.ReasonInvalidSpec, message, generation, now),
        };
        KeepOthers(previous, conditions);
        return new DeepSeekModelStatus
        {
            ObservedGeneration = generation,
            Replicas = model.Status?.Replicas ?? 0,
            ReadyReplicas = model.Status?.ReadyReplicas ?? 0,
            DesiredReplicas = model.Status?.DesiredReplicas,
            QueueDepth = model.Status?.QueueDepth,
            Selector = model.Metadata.Name is { } name ? ModelLabels.SelectorString(name) : null,
            Endpoint = model.Status?.Endpoint,
            Adapters = model.Status?.Adapters,
            Conditions = conditions,
        };
    }

    /// <summary>The adapters the pods are given, in spec order; null when there are none.</summary>
    private static List<string>? AdapterNames(V1Alpha1DeepSeekModel model) =>
        model.Spec.Adapters is { Count: > 0 } adapters ? [.. adapters.Select(a => a.Name)] : null;

    /// <summary>Whether two statuses say the same thing (so an unchanged status is not written again).</summary>
    public static bool Same(DeepSeekModelStatus? a, DeepSeekModelStatus? b) =>
        a is not null && b is not null && SpecHash.Of(a) == SpecHash.Of(b);

    private static V1Condition Condition(IList<V1Condition> previous, string type, string status, string reason, string message, long? generation, DateTime now)
    {
        var before = previous.FirstOrDefault(c => c.Type == type);
        // lastTransitionTime moves only when the status flips, as Kubernetes conditions require.
        var since = before is not null && before.Status == status ? before.LastTransitionTime : now;
        return new V1Condition
        {
            Type = type,
            Status = status,
            Reason = reason,
            Message = message,
            ObservedGeneration = generation,
            LastTransitionTime = since,
        };
    }

    /// <summary>Conditions owned by others (ScalingLimited, written by the autoscaler) are kept as they are.</summary>
    private static void KeepOthers(IList<V1Condition> previous, List<V1Condition> conditions)
    {
        foreach (var condition in previous)
            if (conditions.All(c => c.Type != condition.Type)) conditions.Add(condition);
    }
}
