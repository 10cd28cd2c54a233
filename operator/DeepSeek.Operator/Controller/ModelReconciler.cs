using System.Net;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Autoscaling;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Status;
using DeepSeek.Operator.Validation;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Operator.Controller;

/// <summary>
/// One reconcile of one DeepSeekModel: read it, validate it, build the desired children, apply the
/// difference, compute and write status. Idempotent; reads fresh state every time, so a conflict
/// (409) is answered by running again. With <paramref name="autoscaling"/> and
/// <c>spec.autoscaling.enabled</c>, each due poll's decision sets the replica count (through
/// <c>status.desiredReplicas</c>, which the desired state is built from) and the model is looked at
/// again when the next poll is due.
/// </summary>
public sealed class ModelReconciler(
    IModelCluster cluster,
    OperatorDefaults defaults,
    TimeProvider time,
    ILogger<ModelReconciler> logger,
    ModelAutoscaling? autoscaling = null)
{
    public async Task<ReconcileResult> ReconcileAsync(string key, CancellationToken cancellationToken)
    {
        var (ns, name) = ObjectKey.Split(key);
        var model = await cluster.GetModelAsync(ns, name, cancellationToken);
        // Gone or going: its children carry owner references, the garbage collector removes them.
        if (model is null || model.Metadata.DeletionTimestamp is not null)
        {
            autoscaling?.Forget(key);
            return ReconcileResult.Done;
        }
        try
        {
            return await ReconcileModelAsync(model, cancellationToken);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            logger.LogInformation("Conflict reconciling {Key}, retrying with fresh state: {Message}", key, e.Response.Content);
            return ReconcileResult.Retry;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode is not HttpStatusCode.Forbidden)
        {
            await ReportFailureAsync(model, $"{(int)e.Response.StatusCode} from the API server: {Message(e)}", cancellationToken);
            throw;
        }
    }

    private async Task<ReconcileResult> ReconcileModelAsync(V1Alpha1DeepSeekModel model, CancellationToken cancellationToken)
    {
        var errors = ModelValidator.Validate(model, defaults);
        if (errors.Count > 0)
        {
            var invalid = StatusCalculator.Invalid(model, errors, time.GetUtcNow().UtcDateTime);
            if (!StatusCalculator.Same(model.Status, invalid))
            {
                await cluster.WriteStatusAsync(model, invalid, cancellationToken);
                await RecordAsync(model, "Warning", ModelConditions.ReasonInvalidSpec, string.Join("; ", errors), cancellationToken);
            }
            // Terminal until the spec changes: a new generation brings a new event.
            return ReconcileResult.Done;
        }

        var key = ObjectKey.Of(model.Metadata.NamespaceProperty, model.Metadata.Name);
        // What the children and status are built from: the model with the autoscaler's part of status.
        var scaled = model;
        ScalingPoll? poll = null;
        if (autoscaling is not null)
        {
            DeepSeekModelStatus scaling;
            if (model.Spec.Autoscaling.Enabled)
            {
                poll = await autoscaling.PollAsync(model, cancellationToken);
                // Between polls the last decision (status.desiredReplicas) stands.
                scaling = poll.Decision is { } decided
                    ? ScalingStatus.WithDecision(model.Status, decided, model.Metadata.Generation, time.GetUtcNow().UtcDateTime)
                    : model.Status ?? new DeepSeekModelStatus();
            }
            else
            {
                autoscaling.Forget(key);
                scaling = ScalingStatus.WithoutAutoscaling(model.Status);
            }
            scaled = new V1Alpha1DeepSeekModel { ApiVersion = model.ApiVersion, Kind = model.Kind, Metadata = model.Metadata, Spec = model.Spec, Status = scaling };
        }

        var desired = DesiredStateBuilder.Build(scaled, defaults);
        var existing = (await cluster.ListChildrenAsync(model.Metadata.NamespaceProperty, model.Metadata.Name, cancellationToken))
            .Where(c => c.Metadata.OwnerReferences?.Any(o => o.Controller == true && o.Uid == model.Metadata.Uid) == true)
            .ToList();
        var plan = ChildPlan.Compute(desired.Objects, existing);
        foreach (var action in plan)
        {
            await cluster.ApplyAsync(action, cancellationToken);
            await RecordAsync(model, "Normal", action.Kind + "d", $"{action.Kind}d {action.Object.Kind} {action.Object.Metadata.Name}", cancellationToken);
        }

        // Status from what exists now: workloads just created have no pods yet.
        var workloads = Observe(existing, desired, plan);
        var status = StatusCalculator.Compute(scaled, workloads, reconcileError: null, time.GetUtcNow().UtcDateTime);
        if (!StatusCalculator.Same(model.Status, status)) await cluster.WriteStatusAsync(model, status, cancellationToken);

        if (poll?.Decision is { } decision && autoscaling is not null)
        {
            // Recorded once the count is in status: a conflict above leaves the history as it was.
            autoscaling.Applied(key, decision);
            if (decision.Direction != ScalingDirection.None)
            {
                var reason = decision.Direction == ScalingDirection.Up ? ModelConditions.ReasonScaledUp : ModelConditions.ReasonScaledDown;
                await RecordAsync(model, "Normal", reason, Capitalized(decision.Reason), cancellationToken);
            }
        }
        return poll is null ? ReconcileResult.Done : ReconcileResult.After(poll.NextPollIn);
    }

    private static string Capitalized(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..];

    internal static List<WorkloadObservation> Observe(IReadOnlyList<IKubernetesObject<V1ObjectMeta>> existing, DesiredState desired, IReadOnlyList<ChildAction> plan)
    {
        var deleted = plan.Where(a => a.Kind == ChildActionKind.Delete).Select(a => ChildPlan.Key(a.Object)).ToHashSet();
        var current = existing.Where(e => !deleted.Contains(ChildPlan.Key(e))).ToDictionary(ChildPlan.Key);
        var observations = new List<WorkloadObservation>();
        foreach (var item in desired.Objects)
        {
            current.TryGetValue(ChildPlan.Key(item), out var found);
            switch (item)
            {
                case V1Deployment d:
                    var deployment = found as V1Deployment;
                    observations.Add(new WorkloadObservation(d.Metadata.Name, d.Spec.Replicas ?? 0,
                        deployment?.Status?.Replicas ?? 0, deployment?.Status?.ReadyReplicas ?? 0, deployment?.Status?.UpdatedReplicas ?? 0,
                        UpToDate(deployment, deployment?.Status?.ObservedGeneration, plan)));
                    break;
                case V1StatefulSet s when found is V1StatefulSet set:
                    observations.Add(new WorkloadObservation(s.Metadata.Name, s.Spec.Replicas ?? 0,
                        set.Status?.Replicas ?? 0, set.Status?.ReadyReplicas ?? 0, set.Status?.UpdatedReplicas ?? 0,
                        UpToDate(set, set.Status?.ObservedGeneration, plan)));
                    break;
            }
        }
        return observations;
    }

    private static bool UpToDate(IKubernetesObject<V1ObjectMeta>? workload, long? observedGeneration, IReadOnlyList<ChildAction> plan) =>
        workload is not null
        && plan.All(a => ChildPlan.Key(a.Object) != ChildPlan.Key(workload))
        && observedGeneration >= workload.Metadata.Generation;

    private async Task ReportFailureAsync(V1Alpha1DeepSeekModel model, string message, CancellationToken cancellationToken)
    {
        try
        {
            var status = StatusCalculator.Compute(model, [], message, time.GetUtcNow().UtcDateTime);
            status.Replicas = model.Status?.Replicas ?? 0;
            status.ReadyReplicas = model.Status?.ReadyReplicas ?? 0;
            if (!StatusCalculator.Same(model.Status, status)) await cluster.WriteStatusAsync(model, status, cancellationToken);
            await RecordAsync(model, "Warning", ModelConditions.ReasonReconcileFailed, message, cancellationToken);
        }
        catch (HttpOperationException e)
        {
            logger.LogWarning("Could not record the failure on {Model}: {Status}", model.Metadata.Name, e.Response.StatusCode);
        }
    }

    private async Task RecordAsync(V1Alpha1DeepSeekModel model, string type, string reason, string message, CancellationToken cancellationToken)
    {
        try
        {
            await cluster.RecordEventAsync(model, type, reason, message, cancellationToken);
        }
        catch (HttpOperationException e)
        {
            // Events are best effort; a lost event must not fail the reconcile.
            logger.LogDebug("Event {Reason} on {Model} not recorded: {Status}", reason, model.Metadata.Name, e.Response.StatusCode);
        }
    }

    private static string Message(HttpOperationException e) =>
        string.IsNullOrEmpty(e.Response.Content) ? e.Message : e.Response.Content.Length > 300 ? e.Response.Content[..300] : e.Response.Content;
}
