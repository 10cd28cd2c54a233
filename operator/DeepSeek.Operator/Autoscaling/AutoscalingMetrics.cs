using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace DeepSeek.Operator.Autoscaling;

/// <summary>
/// The autoscaler's metrics on the operator's meter. The Prometheus exporter appends
/// <c>_total</c> to counters, so the counter is named without it; the exported names are
/// <c>deepseek_operator_desired_replicas{deepseekmodel}</c> and
/// <c>deepseek_operator_scaling_decisions_total{deepseekmodel,direction}</c>, <c>deepseekmodel</c> being the
/// model's <c>namespace/name</c> (<see cref="Hosting.OperatorMetrics.ModelLabel"/>): the runtime's own
/// <c>model</c> label is its served name, and the chart's PodMonitor adds <c>deepseekmodel</c> to the runtime
/// series, so both join on it.
/// </summary>
public sealed class AutoscalingMetrics
{
    public const string MeterName = "DeepSeek.Operator";
    public const string DesiredReplicasName = "deepseek_operator_desired_replicas";
    public const string ScalingDecisionsName = "deepseek_operator_scaling_decisions";

    private readonly Counter<long> decisions;
    private readonly ConcurrentDictionary<string, int> desiredReplicas = new(StringComparer.Ordinal);

    public AutoscalingMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        // The factory owns the meter (and shares it with other users of the name): not disposed here.
        var meter = meterFactory.Create(MeterName);
        // Observable, so that a deleted model's series goes away with Forget.
        meter.CreateObservableGauge(
            DesiredReplicasName,
            () => desiredReplicas.Select(m => new Measurement<int>(m.Value, new KeyValuePair<string, object?>(Hosting.OperatorMetrics.ModelLabel, m.Key))),
            description: "Replicas (replica groups for multi-pod models) the autoscaler wants, per model.");
        decisions = meter.CreateCounter<long>(
            ScalingDecisionsName,
            description: "Autoscaler decisions by direction (up, down, none), per model.");
    }

    /// <summary>Records one poll's decision for a model (<c>namespace/name</c>).</summary>
    public void Record(string modelKey, ScalingDecision decision)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelKey);
        ArgumentNullException.ThrowIfNull(decision);
        desiredReplicas[modelKey] = decision.DesiredReplicas;
        decisions.Add(1,
            new KeyValuePair<string, object?>(Hosting.OperatorMetrics.ModelLabel, modelKey),
            new KeyValuePair<string, object?>("direction", decision.Direction.ToString().ToLowerInvariant()));
    }

    /// <summary>Stops reporting a model's desired replicas (deleted, or autoscaling turned off).</summary>
    public void Forget(string modelKey) => desiredReplicas.TryRemove(modelKey, out _);
}
