using System.Diagnostics.Metrics;
using System.Globalization;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Model.Experts;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// The leader's routed picks per expert of each MoE layer since the rebalancer last took them: what
/// feeds <c>deepseek_expert_tokens_total</c>, heard from that counter of this host's meters (the engine
/// records it on its thread after every step), so the rebalancer sees exactly what Prometheus sees.
/// </summary>
public sealed class ObservedExpertLoad : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Dictionary<int, long[]> _picks;
    private readonly Lock _lock = new();

    public ObservedExpertLoad(IMeterFactory meterFactory, IEnumerable<int> moeLayers, int expertCount)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        ArgumentNullException.ThrowIfNull(moeLayers);
        _picks = moeLayers.ToDictionary(layer => layer, _ => new long[expertCount]);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            // This host's engine only: tests may run several hosts in one process.
            if (ReferenceEquals(instrument.Meter.Scope, meterFactory) && instrument.Meter.Name == EngineMetrics.MeterName && instrument.Name == EngineMetrics.ExpertTokensInstrument)
                listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>(OnMeasurement);
        _listener.Start();
    }

    /// <summary>The picks observed since the last call, and a fresh start.</summary>
    public IReadOnlyList<ExpertLoad> Take()
    {
        lock (_lock)
        {
            IReadOnlyList<ExpertLoad> taken = [.. _picks.OrderBy(p => p.Key).Select(p => new ExpertLoad(p.Key, [.. p.Value]))];
            foreach (var counts in _picks.Values) Array.Clear(counts);
            return taken;
        }
    }

    private void OnMeasurement(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        int? layer = null, expert = null;
        foreach (var (key, tag) in tags)
        {
            if (key == "layer") layer = Parse(tag);
            else if (key == "expert") expert = Parse(tag);
        }
        if (layer is not { } l || expert is not { } e) return;
        lock (_lock)
            if (_picks.TryGetValue(l, out var counts) && e >= 0 && e < counts.Length) counts[e] += value;
    }

    private static int? Parse(object? tag) => tag is string text && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;

    public void Dispose() => _listener.Dispose();
}
