using System.Collections.Concurrent;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Autoscaling;
using DeepSeek.Operator.Desired;

namespace DeepSeek.Operator.Controller;

/// <summary>
/// The autoscaler's I/O for <see cref="AutoscalerLoop"/>: every <c>pollIntervalSeconds</c> per model, take the
/// model's pods, read each replica leader's load, and decide (pure, with the model's history).
/// The loop records the decision in status and then reports it with <see cref="Applied"/>.
/// </summary>
public sealed class ModelAutoscaling(IModelPods pods, IReplicaLoadSource loads, ScalingHistoryStore history, AutoscalingMetrics metrics)
{
    // Decisions made but not yet in status (the write failed): the retry applies them again
    // rather than fall back to the old count until the next poll.
    private readonly ConcurrentDictionary<string, ScalingDecision> pending = new(StringComparer.Ordinal);

    /// <summary>Polls when due; otherwise says how long until it is.</summary>
    public async Task<ScalingPoll> PollAsync(V1Alpha1DeepSeekModel model, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        var key = ObjectKey.Of(model.Metadata.NamespaceProperty, model.Metadata.Name);
        var policy = AutoscalingPolicy.From(model.Spec.Autoscaling);
        var wait = history.UntilNextPoll(key, policy);
        var name = model.Metadata.Name;
        var shape = ModelShape.Of(model);
        if (wait > TimeSpan.Zero)
        {
            var unapplied = pending.TryGetValue(key, out var decided) && decided.CurrentReplicas == shape.Replicas ? decided : null;
            return new ScalingPoll(unapplied, wait);
        }

        var targets = ReplicaTargets.Of(name, shape, pods.Pods(model.Metadata.NamespaceProperty ?? "default", name));
        var read = await loads.ReadAsync(key, targets.Select(t => t.Endpoint).ToList(), cancellationToken);
        var observed = ReplicaTargets.PerReplica(ReplicaTargets.WithPodReadiness(read, targets), targets);
        var decision = history.Evaluate(key, policy, shape.Replicas, observed);
        if (shape.IsMultiPod) decision = GroupScaleDown.FromTheTop(name, decision);
        metrics.Record(key, decision);
        pending[key] = decision;
        return new ScalingPoll(decision, policy.PollInterval);
    }

    /// <summary>The decision's count is now the model's: the rate limits count the change.</summary>
    public void Applied(string key, ScalingDecision decision)
    {
        ArgumentNullException.ThrowIfNull(decision);
        if (!pending.TryRemove(new KeyValuePair<string, ScalingDecision>(key, decision))) return;
        history.RecordScale(key, decision.CurrentReplicas, decision.DesiredReplicas);
    }

    /// <summary>The model is gone or no longer autoscaled: drop its history, connections and series.</summary>
    public void Forget(string key)
    {
        history.Forget(key);
        pending.TryRemove(key, out _);
        loads.Forget(key);
        metrics.Forget(key);
    }
}
