using System.Diagnostics.Metrics;
using DeepSeek.Operator.Controller;

namespace DeepSeek.Operator.Hosting;

/// <summary>
/// The operator's own metrics (meter <see cref="MeterName"/>), exported on /metrics as
/// <c>deepseek_operator_reconciles_total{result}</c>, <c>deepseek_operator_reconcile_errors_total</c>,
/// <c>deepseek_operator_reconcile_duration_seconds</c>, <c>deepseek_operator_workqueue_depth</c>,
/// <c>deepseek_operator_leader</c>, <c>deepseek_operator_drift_corrections_total{kind}</c>, and per model
/// <c>deepseek_operator_model_replicas{deepseekmodel,state}</c>: the replicas (replica groups) its status
/// says are desired and ready, <c>deepseekmodel</c> being <c>namespace/name</c>, the label the chart's
/// PodMonitor puts on the model's runtime series too (one label scheme for joins and alerts).
/// </summary>
public sealed class OperatorMetrics : IDisposable
{
    public const string MeterName = "DeepSeek.Operator";
    private readonly Meter meter = new(MeterName);
    private readonly Counter<long> reconciles;
    private readonly Counter<long> errors;
    private readonly Histogram<double> duration;
    private readonly Counter<long> drift;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (int Desired, int Ready)> models = new(StringComparer.Ordinal);
    private WorkQueue? queue;
    private volatile bool leader;

    public OperatorMetrics()
    {
        reconciles = meter.CreateCounter<long>("deepseek_operator_reconciles", description: "Reconciles run, by result (success, conflict, error).");
        errors = meter.CreateCounter<long>("deepseek_operator_reconcile_errors", description: "Reconciles that failed and were requeued with backoff.");
        duration = meter.CreateHistogram<double>("deepseek_operator_reconcile_duration", unit: "s", description: "Time one reconcile took.", tags: null,
            // The SDK's default boundaries (0 to 10000) are for milliseconds; reconciles take milliseconds to seconds.
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });
        drift = meter.CreateCounter<long>("deepseek_operator_drift_corrections", description: "Children restored after fields the operator owns were changed outside it, by kind.");
        meter.CreateObservableGauge("deepseek_operator_workqueue_depth", () => queue?.Depth ?? 0, description: "Keys waiting in the work queue.");
        meter.CreateObservableGauge("deepseek_operator_leader", () => leader ? 1 : 0, description: "1 while this process holds the leader lease.");
        // Observable, so that a deleted model's series goes away with ForgetModel.
        meter.CreateObservableGauge("deepseek_operator_model_replicas", () => models.SelectMany(m => new[]
        {
            new Measurement<int>(m.Value.Desired, new KeyValuePair<string, object?>(ModelLabel, m.Key), new KeyValuePair<string, object?>("state", "desired")),
            new Measurement<int>(m.Value.Ready, new KeyValuePair<string, object?>(ModelLabel, m.Key), new KeyValuePair<string, object?>("state", "ready")),
        }), description: "Replicas (replica groups for multi-pod models) of each model, as its status says: desired and ready.");
    }

    /// <summary>This instance's meter: tests listen to one host's instruments among several in one process.</summary>
    internal Meter Meter => meter;

    public void ObserveQueue(WorkQueue workQueue) => queue = workQueue;

    /// <summary>The label naming a DeepSeekModel on the operator's per-model series: <c>namespace/name</c>.</summary>
    public const string ModelLabel = "deepseekmodel";

    /// <summary>A process that stops leading stops reporting models: the new leader reports them.</summary>
    public void Leading(bool isLeader)
    {
        leader = isLeader;
        if (!isLeader) models.Clear();
    }

    /// <summary>The replicas a model's status just said it wants and has ready (<paramref name="model"/>: <c>namespace/name</c>).</summary>
    public void ModelReplicas(string model, int desired, int ready) => models[model] = (desired, ready);

    /// <summary>Stops reporting a model (deleted).</summary>
    public void ForgetModel(string model) => models.TryRemove(model, out _);

    public void Reconciled(string result, TimeSpan elapsed)
    {
        reconciles.Add(1, new KeyValuePair<string, object?>("result", result));
        if (result == "error") errors.Add(1);
        duration.Record(elapsed.TotalSeconds);
    }

    public void DriftCorrected(string kind) => drift.Add(1, new KeyValuePair<string, object?>("kind", kind));

    public void Dispose() => meter.Dispose();
}
