using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// This process's place in an expert-parallel group: the placement every rank computes alike from
/// the config (a pure function of the expert count, the ranks and the redundancy), the fingerprint
/// of the checkpoint, and the pass that shards a built model for this rank. The leader's transport
/// reaches the other ranks through <see cref="ExpertPeers"/>; a non-leader never dispatches.
/// </summary>
public sealed class ExpertGroup
{
    /// <summary>How long a step waits for a rank's answer before the rank counts as lost.</summary>
    public static readonly TimeSpan ComputeDeadline = TimeSpan.FromSeconds(30);

    public ExpertGroup(ExpertParallelSettings settings, string modelDirectory)
    {
        ArgumentNullException.ThrowIfNull(settings);
        Settings = settings;
        Placement = ExpertPlacement.Initial(DeepSeekConfig.Load(modelDirectory), settings.WorldSize, settings.RedundantExperts);
        Fingerprint = ModelFingerprint.Of(modelDirectory);
    }

    public ExpertParallelSettings Settings { get; }

    public ExpertPlacement Placement { get; }

    public string Fingerprint { get; }

    /// <summary>
    /// Placements are numbered so a rank refuses work computed for another; the placement never changes
    /// after start (no rebalancing yet), so every member runs the initial one.
    /// </summary>
    public const long PlacementVersion = 1;

    /// <summary>The expert-parallel pass for this rank, with <paramref name="transport"/> for the picks held elsewhere.</summary>
    public void Shard(DeepSeekForCausalLM model, IExpertTransport transport) =>
        ExpertParallelism.Apply(model, Placement, Settings.Rank, transport);

    /// <summary>A rank other than the leader only answers Compute; it never runs a forward that would dispatch.</summary>
    public sealed class NoDispatch : IExpertTransport
    {
        public IExpertCombine Dispatch(int layerIndex, long placementVersion, IReadOnlyList<ExpertBatch> batches) =>
            throw new InvalidOperationException("Only the leader of an expert-parallel group runs forwards and dispatches tokens.");
    }
}
