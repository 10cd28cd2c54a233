using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Autoscaling;
using DeepSeek.Operator.Status;
using DeepSeek.Operator.Validation;
using k8s;
using k8s.Autorest;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Operator.Controller;

/// <summary>
/// The autoscaler as its own loop, beside the reconciler (as the HPA controller is beside the
/// Deployment controller): one timer per model with <c>autoscaling.enabled</c>, started and stopped
/// by the model watch. Each tick reads the model and its pods from the caches, reads the replicas'
/// load, decides (<see cref="ModelAutoscaling"/>, pure with its history), and records the decision
/// in the model's status (<c>desiredReplicas</c>, <c>queueDepth</c>, <c>ScalingLimited</c>) with an
/// event and a metric. That status write is a model event: the reconciler then builds the children
/// from <c>status.desiredReplicas</c>, so a reconcile stays spec (+ recorded decision) → children →
/// status, with no gRPC call in it (docs/autoscaling.md, "Where the decision is recorded").
/// </summary>
public sealed class AutoscalerLoop(IModelCluster cluster, ModelAutoscaling autoscaling, TimeProvider time, ILogger<AutoscalerLoop> logger) : IDisposable
{
    // Cancelled, never disposed: ticks still running when the term ends read its token.
    /// <summary>After a failed tick (a 409 from a concurrent status write, an API error), try again this soon.</summary>
    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<string, ITimer> timers = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource stopping = new();

    /// <summary>Called for every model the watch sees: starts, keeps or stops its timer.</summary>
    public void Observe(WatchEventType type, DeepSeekModelDocument model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var key = ObjectKey.Of(model.Metadata.NamespaceProperty, model.Metadata.Name);
        var enabled = type != WatchEventType.Deleted && model.Metadata.DeletionTimestamp is null
            && model.Spec?["autoscaling"]?["enabled"] is JsonValue v && v.TryGetValue<bool>(out var on) && on;
        if (!enabled)
        {
            if (timers.TryRemove(key, out var timer))
            {
                timer.Dispose();
                autoscaling.Forget(key);
            }
            return;
        }
        if (stopping.IsCancellationRequested || timers.ContainsKey(key)) return;
        var created = time.CreateTimer(_ => _ = TickAsync(key), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        if (timers.TryAdd(key, created)) created.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        else created.Dispose();
    }

    private async Task TickAsync(string key)
    {
        var next = RetryAfter;
        try
        {
            next = await PollAsync(key, stopping.Token) ?? RetryAfter;
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            return;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            // The reconciler wrote status in between: the decision stays pending and is written on the retry.
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Autoscaling {Model} failed: {Error}; trying again in {Delay}", key, e.Message, RetryAfter);
        }
        if (timers.TryGetValue(key, out var timer) && !stopping.IsCancellationRequested)
        {
            try
            {
                timer.Change(next, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // Stopped meanwhile (the model was deleted or autoscaling turned off).
            }
        }
    }

    /// <returns>When to look again; null to retry soon.</returns>
    private async Task<TimeSpan?> PollAsync(string key, CancellationToken cancellationToken)
    {
        var (ns, name) = ObjectKey.Split(key);
        var document = cluster.GetModel(ns, name);
        if (document is null) return null;
        var (model, errors) = ModelReader.Read(document);
        // An invalid model is the reconciler's to report; nothing to scale until it is fixed.
        if (errors.Count > 0 || ModelValidator.Validate(model).Count > 0 || !model.Spec.Autoscaling.Enabled) return AutoscalingPolicy.From(model.Spec.Autoscaling).PollInterval;
        var poll = await autoscaling.PollAsync(model, cancellationToken);
        if (poll.Decision is not { } decision) return poll.NextPollIn;
        var status = ScalingStatus.WithDecision(model.Status, decision, model.Metadata.Generation, time.GetUtcNow().UtcDateTime);
        if (!StatusCalculator.Same(model.Status, status)) await cluster.WriteStatusAsync(model.Metadata, status, cancellationToken);
        // Counted once it is in status: a refused write leaves the rate limits' history as it was.
        autoscaling.Applied(key, decision);
        if (decision.Direction != ScalingDirection.None)
        {
            var reason = decision.Direction == ScalingDirection.Up ? ModelConditions.ReasonScaledUp : ModelConditions.ReasonScaledDown;
            try
            {
                await cluster.RecordEventAsync(model.Metadata, "Normal", reason, decision.Reason.Length == 0 ? reason : char.ToUpperInvariant(decision.Reason[0]) + decision.Reason[1..], cancellationToken);
            }
            catch (HttpOperationException e)
            {
                logger.LogDebug("Event {Reason} on {Model} not recorded: {Status}", reason, key, e.Response.StatusCode);
            }
        }
        return poll.NextPollIn;
    }

    public void Dispose()
    {
        stopping.Cancel();
        foreach (var (_, timer) in timers) timer.Dispose();
        timers.Clear();
    }
}
