using System.Diagnostics.Metrics;
using DeepSeek.Operator.Controller;

namespace DeepSeek.Operator.Hosting;

/// <summary>
/// The operator's own metrics (meter <see cref="MeterName"/>), exported on /metrics as
/// <c>deepseek_operator_reconciles_total{result}</c>, <c>deepseek_operator_reconcile_errors_total</c>,
/// <c>deepseek_operator_reconcile_duration_seconds</c>, <c>deepseek_operator_workqueue_depth</c>,
/// <c>deepseek_operator_leader</c>, <c>deepseek_operator_drift_corrections_total{kind}</c>.
/// </summary>
public sealed class OperatorMetrics : IDisposable
{
    public const string MeterName = "DeepSeek.Operator";
    private readonly Meter meter = new(MeterName);
    private readonly Counter<long> reconciles;
    private readonly Counter<long> errors;
    private readonly Histogram<double> duration;
    private readonly Counter<long> drift;
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
    }

    /// <summary>This instance's meter: tests listen to one host's instruments among several in one process.</summary>
    internal Meter Meter => meter;

    public void ObserveQueue(WorkQueue workQueue) => queue = workQueue;

    public void Leading(bool isLeader) => leader = isLeader;

    public void Reconciled(string result, TimeSpan elapsed)
    {
        reconciles.Add(1, new KeyValuePair<string, object?>("result", result));
        if (result == "error") errors.Add(1);
        duration.Record(elapsed.TotalSeconds);
    }

    public void DriftCorrected(string kind) => drift.Add(1, new KeyValuePair<string, object?>("kind", kind));

    public void Dispose() => meter.Dispose();
}
