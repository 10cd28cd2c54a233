using System.Diagnostics.Metrics;
using DeepSeek.Runtime.Serving;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// Publishes <c>deepseek_requests_waiting</c> (the queue depth the autoscaler targets) from the
/// backend's load snapshot. The one place that instrument is created: the engine must not create it again.
/// </summary>
public sealed class LoadGauges : IDisposable
{
    public const string RequestsWaiting = "deepseek_requests_waiting";

    private readonly Meter _meter;

    public LoadGauges(IMeterFactory meters, IInferenceBackend backend)
    {
        _meter = meters.Create(RuntimeHost.MeterName);
        var model = new KeyValuePair<string, object?>("model", backend.Model.ServedName);
        _meter.CreateObservableGauge(RequestsWaiting, () => new Measurement<int>(backend.GetLoad().Waiting, model),
            unit: null, description: "Requests admitted but not yet running (queue depth).");
    }

    public void Dispose() => _meter.Dispose();
}
