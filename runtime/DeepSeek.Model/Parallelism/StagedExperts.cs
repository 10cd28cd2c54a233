using static TorchSharp.torch;

namespace DeepSeek.Model.Parallelism;

/// <summary>
/// One layer's experts of a placement other than the one in force, held beside it: the next
/// placement's, loaded before the switch (<see cref="ShardedExperts.Stage"/>), which the switch adopts,
/// freeing the old ones; or, with data-parallel attention, the last placement's after the switch
/// (<see cref="ShardedExperts.Switch"/> retiring them), since peers that have not switched yet still
/// route by it. Disposing frees them (a change abandoned, or every rank switched).
/// </summary>
public sealed class StagedExperts : IDisposable
{
    private Tensor? _gateUp;
    private Tensor? _down;

    internal StagedExperts(int layerIndex, LayerPlacement placement, long version, Tensor gateUp, Tensor down)
    {
        LayerIndex = layerIndex;
        Placement = placement;
        Version = version;
        _gateUp = gateUp;
        _down = down;
    }

    public int LayerIndex { get; }

    public LayerPlacement Placement { get; }

    /// <summary>The version of the placement these experts belong to.</summary>
    public long Version { get; }

    /// <summary>The stacks, still owned by this (a shard computes peers' rows of this version with them).</summary>
    internal (Tensor GateUp, Tensor Down) Stacks => (_gateUp ?? throw new ObjectDisposedException(nameof(StagedExperts)), _down!);

    /// <summary>Hands the stacks over to the layer; this no longer owns them.</summary>
    internal (Tensor GateUp, Tensor Down) Take()
    {
        var taken = Stacks;
        (_gateUp, _down) = (null, null);
        return taken;
    }

    public void Dispose()
    {
        _gateUp?.Dispose();
        _down?.Dispose();
        (_gateUp, _down) = (null, null);
    }
}
