using System.Diagnostics.Metrics;
using System.Globalization;
using DeepSeek.Model.Parallelism;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// Every rank's place in its group on <c>/metrics</c>: <c>deepseek_ep_rank</c> and
/// <c>deepseek_ep_local_experts{layer}</c> (routed experts this rank holds, redundant copies included).
/// Observed, so the series always show the placement in force.
/// </summary>
public sealed class ExpertParallelMetrics
{
    public ExpertParallelMetrics(string model, int rank, ExpertPlacement placement, IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(placement);
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(Hosting.RuntimeHost.MeterName);
        var modelTag = new KeyValuePair<string, object?>("model", model);
        meter.CreateObservableGauge("deepseek_ep_rank", () => new Measurement<long>(rank, modelTag), "1", "This process's rank in its expert-parallel group (0 = leader).");
        meter.CreateObservableGauge("deepseek_ep_local_experts", () => placement.Layers.Select(layer =>
                new Measurement<long>(layer.ExpertsOn(rank).Count, modelTag, new("layer", layer.LayerIndex.ToString(CultureInfo.InvariantCulture)))),
            "{expert}", "Routed experts this rank holds for the layer, redundant copies included.");
    }
}
