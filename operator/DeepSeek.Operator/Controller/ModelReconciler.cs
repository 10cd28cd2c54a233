using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Cluster;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Hosting;
using DeepSeek.Operator.Status;
using DeepSeek.Operator.Validation;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Operator.Controller;

/// <summary>
/// One reconcile of one DeepSeekModel: read it (from the watch caches), validate it, build the desired
/// children, apply the difference (including restoring fields others changed), compute and write
/// status. Idempotent; a write from a stale read is refused (409) and the key runs again. With
/// <c>spec.autoscaling.enabled</c> the replica count is the autoscaler's last decision, which
/// <see cref="AutoscalerLoop"/> records in <c>status.desiredReplicas</c>: the reconcile itself never
/// reads load.
/// </summary>
public sealed class ModelReconciler(
    IModelCluster cluster,
    OperatorDefaults defaults,
    ClusterFeatures features,
    TimeProvider time,
    ILogger<ModelReconciler> logger,
    OperatorMetrics? metrics = null)
{
    private readonly WriteExpectations expectations = new(time);

    public async Task<ReconcileResult> ReconcileAsync(string key, CancellationToken cancellationToken)
    {
        var (ns, name) = ObjectKey.Split(key);
        var document = cluster.GetModel(ns, name);
        // Gone or going: its children carry owner references, the garbage collector removes them.
        if (document is null || document.Metadata.DeletionTimestamp is not null)
        {
            expectations.Forget(key);
            metrics?.ForgetModel(key);
            return ReconcileResult.Done;
        }
        var (model, readErrors) = ModelReader.Read(document);
        try
        {
            var errors = readErrors.Count > 0 ? readErrors : ModelValidator.Validate(model, defaults);
            if (errors.Count > 0)
            {
                var invalid = StatusCalculator.Invalid(model, errors, time.GetUtcNow().UtcDateTime);
                Report(key, invalid);
                await WriteIfChangedAsync(model, invalid, "Warning", ModelConditions.ReasonInvalidSpec, string.Join("; ", errors), cancellationToken);
                // Terminal until the spec changes: a new generation brings a new event.
                return ReconcileResult.Done;
            }
            if (features.Refusal(model.Spec) is { } refusal)
            {
                var refused = StatusCalculator.Refused(model, new ModelProblem(ModelConditions.ReasonFeatureUnsupported, refusal), time.GetUtcNow().UtcDateTime);
                Report(key, refused);
                await WriteIfChangedAsync(model, refused, "Warning", ModelConditions.ReasonFeatureUnsupported, refusal, cancellationToken);
                return ReconcileResult.Done;
            }
            return await ReconcileModelAsync(model, cancellationToken);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            // A stale read (the cache is a moment behind) or a create racing our own: run again on fresh state.
            logger.LogDebug("Conflict reconciling {Key}, retrying: {Message}", key, ApiMessage(e));
            return ReconcileResult.Retry;
        }
    }

    private async Task<ReconcileResult> ReconcileModelAsync(V1Alpha1DeepSeekModel model, CancellationToken cancellationToken)
    {
        var key = ObjectKey.Of(model.Metadata.NamespaceProperty, model.Metadata.Name);
        var ns = model.Metadata.NamespaceProperty ?? "default";
        // What the children and status are built from: the model with the autoscaler's part of status
        // (its recorded decision), or without it once autoscaling is off and spec.replicas rules.
        var scaled = model.Spec.Autoscaling.Enabled
            ? model
            : new V1Alpha1DeepSeekModel { ApiVersion = model.ApiVersion, Kind = model.Kind, Metadata = model.Metadata, Spec = model.Spec, Status = ScalingStatus.WithoutAutoscaling(model.Status) };

        var desired = DesiredStateBuilder.Build(scaled, defaults);
        var existing = cluster.Children(ns, model.Metadata.Name)
            .Where(c => c.Metadata.OwnerReferences?.Any(o => o.Controller == true && o.Uid == model.Metadata.Uid) == true)
            .ToList();
        foreach (var child in existing) expectations.Seen(Child(ns, child));
        if (features.DroppedImageVolume(desired.Objects, existing) is { } dropped)
        {
            // Not corrected as drift: each write would be stored without the volume again. Looked at
            // again after a while, in case the gate was turned on (a spec change comes at once).
            var refused = StatusCalculator.Refused(model, new ModelProblem(ModelConditions.ReasonFeatureUnsupported, dropped), time.GetUtcNow().UtcDateTime);
            Report(key, refused);
            await WriteIfChangedAsync(model, refused, "Warning", ModelConditions.ReasonFeatureUnsupported, dropped, cancellationToken);
            return ReconcileResult.After(TimeSpan.FromMinutes(5));
        }
        // A child created by the previous reconcile that the cache does not show yet is not missing.
        var plan = ChildPlan.Compute(desired.Objects, existing)
            .Where(a => a.Kind != ChildActionKind.Create || !expectations.AwaitingCreate(Child(ns, a.Object)))
            .ToList();
        // Before the workloads, whose pods read it: the group token, read by name on every reconcile (no watch,
        // no cache: a deleted Secret is noticed here), created once if missing, never replaced or deleted.
        var tokenProblem = desired.GroupToken is { } token ? await EnsureGroupTokenAsync(model, token, cancellationToken) : null;
        foreach (var wave in ChildPlan.Waves(plan))
            await Task.WhenAll(wave.Select(action => ApplyAsync(model, action, cancellationToken)));
        // The events and the status are independent writes: sent together.
        var recorded = RecordPlanAsync(model, plan, cancellationToken);

        // Status from what exists now: workloads just created have no pods yet.
        var workloads = await ObserveAsync(existing, desired, plan, cluster.Pods(ns, model.Metadata.Name), cancellationToken);
        var status = StatusCalculator.Compute(scaled, workloads, failure: null, time.GetUtcNow().UtcDateTime, tokenProblem);
        Report(key, status);
        await Task.WhenAll(recorded, WriteStatusAsync(model, status, cancellationToken));
        if (tokenProblem is null) return ReconcileResult.Done;

        // Said once when it starts, not on every look; looked at again later, as no watch says when the Secret is fixed.
        if (model.Status?.Conditions?.Any(c => c.Type == ModelConditions.Degraded && c.Reason == ModelConditions.ReasonGroupTokenInvalid) != true)
            await RecordAsync(model, "Warning", tokenProblem.Reason, tokenProblem.Message, cancellationToken);
        return ReconcileResult.After(GroupTokenRecheck);
    }

    /// <summary>The model's replicas as its status says, on /metrics (what the chart's ModelNotAvailable alert reads).</summary>
    private void Report(string key, DeepSeekModelStatus status) => metrics?.ModelReplicas(key, status.DesiredReplicas ?? 0, status.ReadyReplicas ?? 0);

    /// <summary>How soon a model whose group token Secret is unusable looks at it again (nothing watches Secrets).</summary>
    internal static readonly TimeSpan GroupTokenRecheck = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The group token Secret: a GET by name; missing, it is created with a new token (the one value not derived
    /// from the model, issued here at the edge); present, it is used as it is, or, if it cannot be (<see
    /// cref="GroupSecurity.Defect"/>), reported and left alone: the operator has no right to change or delete it.
    /// </summary>
    private async Task<ModelProblem?> EnsureGroupTokenAsync(V1Alpha1DeepSeekModel model, V1Secret desired, CancellationToken cancellationToken)
    {
        var ns = desired.Metadata.NamespaceProperty ?? "default";
        var name = desired.Metadata.Name;
        try
        {
            if (await cluster.ReadSecretAsync(ns, name, cancellationToken) is { } stored)
                return GroupSecurity.Defect(stored, model.Metadata.Uid) is { } defect ? new ModelProblem(ModelConditions.ReasonGroupTokenInvalid, defect) : null;
            GroupSecurity.IssueToken(desired);
            await cluster.CreateSecretAsync(desired, cancellationToken);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode is not (HttpStatusCode.Conflict or HttpStatusCode.Forbidden))
        {
            var message = $"Ensuring Secret {name} was refused by the API server ({(int)e.Response.StatusCode}): {ApiMessage(e)}";
            await ReportFailureAsync(model, new ModelProblem(ModelConditions.ReasonReconcileFailed, message), cancellationToken);
            throw;
        }
        await RecordAsync(model, "Normal", "Created", $"Created Secret {name}", cancellationToken);
        return null;
    }

    /// <summary>One write of the plan; a refusal is reported on the model and ends the reconcile (409 and 403 are retried as they are).</summary>
    private async Task ApplyAsync(V1Alpha1DeepSeekModel model, ChildAction action, CancellationToken cancellationToken)
    {
        var ns = model.Metadata.NamespaceProperty ?? "default";
        try
        {
            await cluster.ApplyAsync(action, cancellationToken);
            if (action.Kind == ChildActionKind.Create) expectations.Created(Child(ns, action.Object));
        }
        catch (HttpOperationException e) when (e.Response.StatusCode is not (HttpStatusCode.Conflict or HttpStatusCode.Forbidden))
        {
            var message = $"{action.Kind} of {action.Object.Kind} {action.Object.Metadata.Name} was refused by the API server ({(int)e.Response.StatusCode}): {ApiMessage(e)}";
            var problem = features.ExplainRefusedWorkload(model.Spec, message) is { } unsupported
                ? new ModelProblem(ModelConditions.ReasonFeatureUnsupported, unsupported)
                : new ModelProblem(e.Response.StatusCode == HttpStatusCode.UnprocessableEntity ? ModelConditions.ReasonWorkloadRefused : ModelConditions.ReasonReconcileFailed, message);
            await ReportFailureAsync(model, problem, cancellationToken);
            throw;
        }
        if (action.Drift)
        {
            metrics?.DriftCorrected(action.Object.Kind);
            logger.LogInformation("Restored {Kind} {Name} of {Model}: fields the operator owns were changed outside it", action.Object.Kind, action.Object.Metadata.Name, ObjectKey.Of(ns, model.Metadata.Name));
        }
    }

    /// <summary>One event per kind of change (not one per object), so a new model costs one event, not four.</summary>
    private async Task RecordPlanAsync(V1Alpha1DeepSeekModel model, IReadOnlyList<ChildAction> plan, CancellationToken cancellationToken)
    {
        foreach (var group in plan.GroupBy(a => (a.Kind, a.Drift)))
        {
            var objects = string.Join(", ", group.Select(a => $"{a.Object.Kind} {a.Object.Metadata.Name}"));
            var (reason, message) = group.Key switch
            {
                (ChildActionKind.Update, true) => (ModelConditions.ReasonDriftCorrected, $"Restored {objects}: fields the operator owns had been changed outside it"),
                (var kind, _) => (kind + "d", $"{kind}d {objects}"),
            };
            await RecordAsync(model, "Normal", reason, message, cancellationToken);
        }
    }

    /// <summary>Writes the status unless it is unchanged, or was written already on this same read of the model.</summary>
    private async Task WriteStatusAsync(V1Alpha1DeepSeekModel model, DeepSeekModelStatus status, CancellationToken cancellationToken)
    {
        if (StatusCalculator.Same(model.Status, status)) return;
        var key = ObjectKey.Of(model.Metadata.NamespaceProperty, model.Metadata.Name);
        // Without transition times: two computations on the same read differ only in "now".
        var timeless = JsonNode.Parse(KubernetesJson.Serialize(status))!;
        foreach (var condition in timeless["conditions"]?.AsArray() ?? []) condition?.AsObject().Remove("lastTransitionTime");
        var hash = SpecHash.Of(timeless.ToJsonString());
        if (expectations.StatusPending(key, model.Metadata.ResourceVersion, hash)) return;
        await cluster.WriteStatusAsync(model.Metadata, status, cancellationToken);
        expectations.StatusWritten(key, model.Metadata.ResourceVersion, hash);
    }

    /// <summary>
    /// A child of one incarnation of its model (the owner's uid): a model deleted and created again under
    /// the same name before the caches showed its first children must not wait for them.
    /// </summary>
    private static string Child(string ns, IKubernetesObject<V1ObjectMeta> item) =>
        ns + "/" + ChildPlan.Key(item) + "/" + item.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true)?.Uid;

    private async Task WriteIfChangedAsync(V1Alpha1DeepSeekModel model, DeepSeekModelStatus status, string type, string reason, string message, CancellationToken cancellationToken)
    {
        if (StatusCalculator.Same(model.Status, status)) return;
        await cluster.WriteStatusAsync(model.Metadata, status, cancellationToken);
        await RecordAsync(model, type, reason, message, cancellationToken);
    }

    private async Task<List<WorkloadObservation>> ObserveAsync(IReadOnlyList<IKubernetesObject<V1ObjectMeta>> existing, DesiredState desired,
        IReadOnlyList<ChildAction> plan, IReadOnlyList<V1Pod> pods, CancellationToken cancellationToken)
    {
        // Only a StatefulSet that lacks pods costs a request: its events say why.
        var warnings = new Dictionary<string, IReadOnlyList<Corev1Event>>(StringComparer.Ordinal);
        foreach (var set in existing.OfType<V1StatefulSet>().Where(WorkloadDiagnosis.PodsMissing))
            warnings[set.Metadata.Name] = await cluster.WarningsAboutAsync(set, cancellationToken);
        return Observe(existing, desired, plan, pods, warnings);
    }

    /// <summary>The workloads as observed (pure): counts, whether their controller caught up, and what is wrong with them.</summary>
    internal static List<WorkloadObservation> Observe(IReadOnlyList<IKubernetesObject<V1ObjectMeta>> existing, DesiredState desired,
        IReadOnlyList<ChildAction> plan, IReadOnlyList<V1Pod> pods, IReadOnlyDictionary<string, IReadOnlyList<Corev1Event>>? warnings = null)
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
                    var (problem, stuck) = deployment is null ? (null, false) : WorkloadDiagnosis.OfDeployment(deployment, pods);
                    observations.Add(new WorkloadObservation(d.Metadata.Name, d.Spec.Replicas ?? 0,
                        deployment?.Status?.Replicas ?? 0, deployment?.Status?.ReadyReplicas ?? 0, deployment?.Status?.UpdatedReplicas ?? 0,
                        UpToDate(deployment, deployment?.Status?.ObservedGeneration, plan), problem, stuck));
                    break;
                case V1StatefulSet s when found is V1StatefulSet set:
                    var group = s.Metadata.Labels?.TryGetValue(ModelLabels.Group, out var g) == true ? g : null;
                    var groupPods = pods.Where(p => p.Metadata.Labels?.TryGetValue(ModelLabels.Group, out var pg) == true && pg == group).ToList();
                    var setWarnings = warnings?.GetValueOrDefault(set.Metadata.Name) ?? [];
                    observations.Add(new WorkloadObservation(s.Metadata.Name, s.Spec.Replicas ?? 0,
                        set.Status?.Replicas ?? 0, set.Status?.ReadyReplicas ?? 0, set.Status?.UpdatedReplicas ?? 0,
                        UpToDate(set, set.Status?.ObservedGeneration, plan), WorkloadDiagnosis.OfStatefulSet(set, groupPods, setWarnings)));
                    break;
            }
        }
        return observations;
    }

    private static bool UpToDate(IKubernetesObject<V1ObjectMeta>? workload, long? observedGeneration, IReadOnlyList<ChildAction> plan) =>
        workload is not null
        && plan.All(a => ChildPlan.Key(a.Object) != ChildPlan.Key(workload))
        && observedGeneration >= workload.Metadata.Generation;

    private async Task ReportFailureAsync(V1Alpha1DeepSeekModel model, ModelProblem problem, CancellationToken cancellationToken)
    {
        try
        {
            var status = StatusCalculator.Compute(model, [], problem, time.GetUtcNow().UtcDateTime);
            status.Replicas = model.Status?.Replicas ?? 0;
            status.ReadyReplicas = model.Status?.ReadyReplicas ?? 0;
            if (!StatusCalculator.Same(model.Status, status)) await cluster.WriteStatusAsync(model.Metadata, status, cancellationToken);
        }
        catch (HttpOperationException e)
        {
            // A stale read (409: the cache has not yet shown the last status write) is the common case under load;
            // the retry writes the status again.
            logger.LogWarning("Could not write the failure into the status of {Model}: {Status}", model.Metadata.Name, e.Response.StatusCode);
        }
        // The failure happened whether or not the status said so: its Event (a count per failure) does not depend on that write.
        await RecordAsync(model, "Warning", problem.Reason, problem.Message, cancellationToken);
    }

    private async Task RecordAsync(V1Alpha1DeepSeekModel model, string type, string reason, string message, CancellationToken cancellationToken)
    {
        try
        {
            await cluster.RecordEventAsync(model.Metadata, type, reason, message, cancellationToken);
        }
        catch (HttpOperationException e)
        {
            // Events are best effort; a lost event must not fail the reconcile.
            logger.LogDebug("Event {Reason} on {Model} not recorded: {Status}", reason, model.Metadata.Name, e.Response.StatusCode);
        }
    }

    /// <summary>The message of the Status body the API server sent (what kubectl prints), not the raw JSON.</summary>
    internal static string ApiMessage(HttpOperationException e)
    {
        var content = e.Response.Content;
        if (!string.IsNullOrEmpty(content))
        {
            try
            {
                if (JsonNode.Parse(content) is JsonObject { } status && (string?)status["message"] is { Length: > 0 } message) return message;
            }
            catch (JsonException)
            {
            }
            return content.Length > 300 ? content[..300] + "…" : content;
        }
        return $"{(int)e.Response.StatusCode} {e.Response.ReasonPhrase}".Trim();
    }
}
