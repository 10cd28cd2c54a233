using System.Diagnostics.Metrics;
using System.Globalization;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// Every rank's place in its group on <c>/metrics</c>: <c>deepseek_ep_rank</c>,
/// <c>deepseek_ep_local_experts{layer}</c> (routed experts this rank holds, redundant copies included)
/// and <c>deepseek_ep_placement_version</c>, observed so the series always show the placement in
/// force; on the leader, <c>deepseek_ep_rebalances_total{result}</c> counts placement changes
/// (<c>switched</c>) and attempts that kept the old placement because a rank could not load
/// (<c>failed</c>).
/// </summary>
public sealed class ExpertParallelMetrics
{
    public const string Switched = "switched";
    public const string Failed = "failed";

    private readonly Counter<long> _rebalances;
    private readonly KeyValuePair<string, object?> _model;

    public ExpertParallelMetrics(string model, ExpertGroup group, IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(Hosting.RuntimeHost.MeterName);
        var rank = group.Settings.Rank;
        var modelTag = _model = new KeyValuePair<string, object?>("model", model);
        meter.CreateObservableGauge("deepseek_ep_rank", () => new Measurement<long>(rank, modelTag), "1", "This process's rank in its expert-parallel group (0 = leader).");
        meter.CreateObservableGauge("deepseek_ep_local_experts", () => group.Placement.Layers.Select(layer =>
                new Measurement<long>(layer.ExpertsOn(rank).Count, modelTag, new("layer", layer.LayerIndex.ToString(CultureInfo.InvariantCulture)))),
            "{expert}", "Routed experts this rank holds for the layer, redundant copies included.");
        meter.CreateObservableGauge("deepseek_ep_placement_version", () => new Measurement<long>(group.Placement.Version, modelTag), "1",
            "Version of the expert placement in force (1 at start, one more per rebalance).");
        _rebalances = meter.CreateCounter<long>("deepseek_ep_rebalances", "{rebalance}", "Expert rebalances: switched to a new placement, or failed and kept the old one.");
        if (group.Settings.IsLeader)
            foreach (var result in new[] { Switched, Failed }) _rebalances.Add(0, _model, new("result", result));
    }

    /// <param name="result"><see cref="Switched"/> or <see cref="Failed"/>.</param>
    public void RecordRebalance(string result) => _rebalances.Add(1, _model, new("result", result));
}
