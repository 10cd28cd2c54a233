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
        var moeLayers = model.RoutedExperts.Select(e => e.LayerIndex).ToList();
        var placed = placement.Layers.Select(l => l.LayerIndex).ToList();
        if (placed.Count != placed.Distinct().Count() || !placed.Order().SequenceEqual(moeLayers.Order()))
            throw new ArgumentException($"The placement covers layers [{string.Join(", ", placed)}]; the model's MoE layers are [{string.Join(", ", moeLayers)}], each once.", nameof(placement));
        if (placement.Layers.Any(l => l.RankCount != placement.RankCount))
            throw new ArgumentException($"Every layer of the placement must span its {placement.RankCount} ranks.", nameof(placement));
        // One rank holds every expert: the model stays as built, with all its compute paths.
        if (placement.RankCount == 1) return;
        foreach (var experts in model.RoutedExperts)
            experts.ApplyPlacement(placement.Layer(experts.LayerIndex), rank, transport);
    }
}
