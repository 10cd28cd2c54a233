using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using DeepSeek.Operator.Hosting;

namespace DeepSeek.Operator.Tests.Support;

/// <summary>
/// Totals of one operator host's counters, by instrument and tags, read in-process. Tests run operators
/// side by side in one process, and every host's meter has the same name, so /metrics of one host also
/// reports the others': this listens to the instruments of one <see cref="OperatorMetrics"/> instance only.
/// </summary>
public sealed class OperatorMeasurements : IDisposable
{
    private readonly MeterListener listener = new();
    private readonly ConcurrentDictionary<string, long> totals = new(StringComparer.Ordinal);

    public OperatorMeasurements(OperatorMetrics metrics)
    {
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, metrics.Meter)) l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            totals.AddOrUpdate(instrument.Name, value, (_, sum) => sum + value);
            foreach (var tag in tags) totals.AddOrUpdate($"{instrument.Name}{{{tag.Key}={tag.Value}}}", value, (_, sum) => sum + value);
        });
        listener.Start();
    }

    /// <summary>The total of <paramref name="instrument"/>, or of its measurements with one tag (<c>key=value</c>).</summary>
    public long Total(string instrument, string? tag = null) => totals.GetValueOrDefault(tag is null ? instrument : $"{instrument}{{{tag}}}");

    public void Dispose() => listener.Dispose();
}
