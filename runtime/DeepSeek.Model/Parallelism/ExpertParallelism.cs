using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using static TorchSharp.torch;

namespace DeepSeek.Model.Parallelism;

/// <summary>
/// The expert-parallel pass (gpt-fast's <c>apply_tp</c> shape): applied to a built model before it
/// is materialised, it swaps every MoE layer's forward for a <see cref="ShardedExperts"/>, which keeps
/// in the layer only the routed experts the placement gives this rank and routes the other picks
/// through the transport. Materialising afterwards allocates the non-expert weights plus this rank's
/// experts, nothing else. The model code, and <see cref="RoutedExperts"/>, know nothing of ranks.
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
            ShardedExperts.Install(experts, placement.Layer(experts.LayerIndex), placement.Version, rank, transport);
    }

    /// <summary>The sharded module this pass installed in <paramref name="experts"/>' layer, or null while the layer holds every expert.</summary>
    public static ShardedExperts? ShardOf(RoutedExperts experts)
    {
        ArgumentNullException.ThrowIfNull(experts);
        return experts.Dispatch as ShardedExperts;
    }

    /// <summary>The version of the placement <paramref name="model"/> runs (the initial one when it is not sharded).</summary>
    public static long VersionOf(DeepSeekForCausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.RoutedExperts.Count == 0 ? ExpertPlacement.InitialVersion : VersionOf(model.RoutedExperts[0]);
    }

    /// <summary>
    /// The version of the placement in force in <paramref name="experts"/>' layer (what every dispatch of
    /// the layer carries); the initial one when it is not sharded.
    /// </summary>
    public static long VersionOf(RoutedExperts experts) => ShardOf(experts)?.Version ?? ExpertPlacement.InitialVersion;

    /// <summary>
    /// What a peer asks of this rank for <paramref name="experts"/>' layer: the weighted sum of the picks
    /// of <paramref name="batch"/>, all of experts held here under placement <paramref name="version"/>
    /// (null: the one in force; <see cref="ShardedExperts.ComputeHeld(ExpertBatch, long?)"/>). Only a sharded layer computes a share of its picks.
    /// </summary>
    /// <returns><c>[rows of the batch, hidden]</c>.</returns>
    public static Tensor ComputeHeld(RoutedExperts experts, ExpertBatch batch, long? version = null)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var shard = ShardOf(experts) ?? throw new InvalidOperationException("Only a sharded layer computes a share of its picks.");
        return shard.ComputeHeld(batch, version);
    }

    /// <summary>
    /// The lockstep transport <paramref name="model"/>'s MoE layers are sharded over (data-parallel attention
    /// over a collective group), or null: then its forwards need no agreement with other ranks.
    /// </summary>
    public static LockstepExpertTransport? LockstepOf(DeepSeekForCausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.RoutedExperts.Count == 0 ? null : ShardOf(model.RoutedExperts[0])?.Transport as LockstepExpertTransport;
    }

    /// <summary>
    /// The first half of a placement change on one rank, for one MoE layer: the experts
    /// <paramref name="next"/> gives <paramref name="rank"/> in <paramref name="layerIndex"/> are
    /// allocated beside the ones in force, kept ones copied, newly assigned ones read from the
    /// memory-mapped <paramref name="checkpoint"/> (<see cref="PlacementChange.ForLayer"/> says which).
    /// The model keeps running its placement meanwhile. Staged one layer at a time so the thread that
    /// owns the model can go on with its work between layers.
    /// </summary>
    /// <returns>What the layer loaded (its move) and the staged experts, which the caller owns.</returns>
    public static (LayerMove Move, StagedExperts Staged) StageLayer(DeepSeekForCausalLM model, ExpertPlacement next, int layerIndex, int rank, SafetensorsCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(checkpoint);
        var (prefix, experts) = model.named_modules().Where(m => m.module is RoutedExperts e && e.LayerIndex == layerIndex)
            .Select(m => (m.name, (RoutedExperts)m.module)).FirstOrDefault();
        if (experts is null) throw new ArgumentException($"Layer {layerIndex} is not a MoE layer of this model.", nameof(layerIndex));
        var shard = ShardOf(experts) ?? throw new InvalidOperationException($"Layer {layerIndex} is not sharded; a placement change needs a group of several ranks.");
        var target = next.Layer(layerIndex);
        var move = PlacementChange.ForLayer(shard.Placement, target, rank);
        var staged = shard.Stage(target, next.Version, move, (name, shape) => checkpoint.Load($"{prefix}.{name}", shape, model.DType, model.Device));
        return (move, staged);
    }

    /// <summary>
    /// The second half: every MoE layer switches to its staged experts under <paramref name="next"/>'s
    /// version. The experts no longer held are freed, or with <paramref name="retire"/> returned (one
    /// entry per MoE layer, which the caller owns), still answering peers that route by the placement
    /// they belong to (data-parallel ranks switch one by one). Call between steps on the thread that owns
    /// the model, with one staged entry per MoE layer (which this takes over).
    /// </summary>
    public static IReadOnlyList<StagedExperts> Switch(DeepSeekForCausalLM model, ExpertPlacement next, IReadOnlyList<StagedExperts> staged, bool retire = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(staged);
        var byLayer = staged.ToDictionary(s => s.LayerIndex);
        var missing = model.RoutedExperts.Where(e => !byLayer.TryGetValue(e.LayerIndex, out var s) || s.Version != next.Version || !ReferenceEquals(s.Placement, next.Layer(e.LayerIndex)))
            .Select(e => e.LayerIndex).ToList();
        if (missing.Count > 0) throw new ArgumentException($"Placement {next.Version} is not staged for MoE layers [{string.Join(", ", missing)}].", nameof(staged));
        var retired = new List<StagedExperts>();
        foreach (var experts in model.RoutedExperts)
        {
            var shard = ShardOf(experts) ?? throw new InvalidOperationException($"Layer {experts.LayerIndex} is not sharded; only a sharded layer changes placement.");
            if (shard.Switch(byLayer[experts.LayerIndex], retire) is { } old) retired.Add(old);
        }
        return retired;
    }

    /// <summary>
    /// Peers' batches routed by the placement of <paramref name="experts"/> (one entry per MoE layer, staged
    /// or retired, owned by the caller) are computed with them from now on; null: by the placement in force
    /// only, which the caller sets before freeing them. On the thread that owns the model.
    /// </summary>
    public static void AnswerBeside(DeepSeekForCausalLM model, IReadOnlyList<StagedExperts>? experts)
    {
        ArgumentNullException.ThrowIfNull(model);
        var byLayer = experts?.ToDictionary(s => s.LayerIndex);
        foreach (var layer in model.RoutedExperts)
        {
            if (ShardOf(layer) is not { } shard) continue;
            shard.AnswerBeside(byLayer is null ? null
                : byLayer.TryGetValue(layer.LayerIndex, out var held) ? held : throw new ArgumentException($"No experts beside those in force for MoE layer {layer.LayerIndex}.", nameof(experts)));
        }
    }
}
