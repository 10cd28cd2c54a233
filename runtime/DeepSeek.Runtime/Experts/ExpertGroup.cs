using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// This process's place in an expert-parallel group: the placement in force (every member starts
/// with the same one, a pure function of the expert count, the ranks and the redundancy; the
/// rebalancer of the leader, or of rank 0 with data-parallel attention, moves the group to later versions), the fingerprint of the checkpoint, and
/// the pass that shards a built model for this rank. The leader's transport reaches the other ranks
/// through <see cref="ExpertPeers"/>; a non-leader never dispatches.
/// </summary>
public sealed class ExpertGroup
{
    /// <summary>How long a step waits for a rank's answer before the rank counts as lost.</summary>
    public static readonly TimeSpan ComputeDeadline = TimeSpan.FromSeconds(30);

    private ExpertPlacement _placement;
    private ExpertPlacement? _switchingTo;
    private volatile bool _placementChanging;
    // The version of experts held beside those in force (staged, or retired until every rank switched), or 0.
    private long _beside;

    public ExpertGroup(ExpertParallelSettings settings, Hosting.ModelFolder model)
    {
        ArgumentNullException.ThrowIfNull(settings);
        Settings = settings;
        Model = model;
        _placement = ExpertPlacement.Initial(Config, settings.WorldSize, settings.RedundantExperts);
        MoeLayers = [.. Enumerable.Range(0, Config.NumHiddenLayers).Where(Config.IsMoeLayer)];
        Fingerprint = ModelFingerprint.Of(model);
    }

    public ExpertParallelSettings Settings { get; }

    /// <summary>The checkpoint every member loads (each its own shard of it).</summary>
    public Hosting.ModelFolder Model { get; }

    public DeepSeekConfig Config => Model.Config;

    /// <summary>The model's MoE layers, ascending: what a placement and an observed load cover.</summary>
    public IReadOnlyList<int> MoeLayers { get; }

    /// <summary>The placement in force on this member (its version is what Status reports and Compute requires).</summary>
    public ExpertPlacement Placement => Volatile.Read(ref _placement);

    public string Fingerprint { get; }

    /// <summary>
    /// The model this process's engine runs, once sharded: the leader's (the rebalancer stages and switches its
    /// experts on the engine thread), or with data-parallel attention any rank's (it also answers its peers with it).
    /// </summary>
    public DeepSeekForCausalLM? EngineModel { get; private set; }

    /// <summary>
    /// Whether a rank reporting <paramref name="version"/> runs what this member can work with: the placement
    /// in force, during a switch also the one being committed (ranks commit just before the leader), and
    /// with data-parallel attention the one whose experts this member holds beside it (ranks switch one by one).
    /// </summary>
    public bool Runs(long version) =>
        version == Placement.Version || version == Volatile.Read(ref _switchingTo)?.Version || (version != 0 && version == Interlocked.Read(ref _beside));

    /// <summary>This member holds the experts of placement <paramref name="version"/> beside those in force (null: none).</summary>
    public void HoldsBeside(long? version) => Interlocked.Exchange(ref _beside, version ?? 0);

    /// <summary>
    /// Whether this member is changing the group's placement (preparing it on the ranks, switching, or bringing
    /// a rank up to date): the NCCL leader then sends its ranks a heartbeat every tick while idle, since they run
    /// their part of the change between its headers.
    /// </summary>
    public bool PlacementChanging
    {
        get => _placementChanging;
        set => _placementChanging = value;
    }

    /// <summary>The leader is committing <paramref name="next"/> on its ranks; <see cref="Switched"/> ends it.</summary>
    public void SwitchingTo(ExpertPlacement? next) => Volatile.Write(ref _switchingTo, next);

    /// <summary><paramref name="placement"/> is in force on this member.</summary>
    public void Switched(ExpertPlacement placement)
    {
        ArgumentNullException.ThrowIfNull(placement);
        Volatile.Write(ref _placement, placement);
        Volatile.Write(ref _switchingTo, null);
    }

    /// <summary>The expert-parallel pass for this rank, with <paramref name="transport"/> for the picks held elsewhere.</summary>
    public void Shard(DeepSeekForCausalLM model, IExpertTransport transport)
    {
        ExpertParallelism.Apply(model, Placement, Settings.Rank, transport);
        if (Settings.RunsEngine) EngineModel = model;
    }

    /// <summary>A rank other than the leader only answers Compute; it never runs a forward that would dispatch.</summary>
    public sealed class NoDispatch : IExpertTransport
    {
        public IExpertCombine Dispatch(int layerIndex, long placementVersion, IReadOnlyList<ExpertBatch> batches) =>
            throw new InvalidOperationException("Only the leader of an expert-parallel group runs forwards and dispatches tokens.");
    }
}
