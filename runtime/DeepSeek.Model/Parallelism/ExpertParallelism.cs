using DeepSeek.Model.Modeling;

namespace DeepSeek.Model.Parallelism;

/// <summary>
/// The expert-parallel pass (gpt-fast's <c>apply_tp</c> shape): applied to a built model before it
/// is materialised, it keeps in every MoE layer only the routed experts the placement gives this
/// rank and routes the other picks through the transport. Materialising afterwards allocates the
/// non-expert weights plus this rank's experts, nothing else. The model code knows nothing of ranks.
/// </summary>
public static class ExpertParallelism
{
    public static void Apply(DeepSeekForCausalLM model, ExpertPlacement placement, int rank, IExpertTransport transport)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(placement);
        ArgumentNullException.ThrowIfNull(transport);
        if (model.IsMaterialised) throw new InvalidOperationException("Expert parallelism is applied before the model is materialised.");
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, placement.RankCount);
        var unknown = placement.Layers.Select(l => l.LayerIndex).Except(model.RoutedExperts.Select(e => e.LayerIndex)).ToList();
        if (unknown.Count > 0) throw new ArgumentException($"The placement names layers {string.Join(", ", unknown)}, which are not MoE layers of this model.", nameof(placement));
        if (placement.Layers.Any(l => l.RankCount != placement.RankCount))
            throw new ArgumentException($"Every layer of the placement must span its {placement.RankCount} ranks.", nameof(placement));
        foreach (var experts in model.RoutedExperts)
            experts.ApplyPlacement(placement.Layer(experts.LayerIndex), rank, transport);
    }
}
