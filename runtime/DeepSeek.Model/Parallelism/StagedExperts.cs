using static TorchSharp.torch;

namespace DeepSeek.Model.Parallelism;

/// <summary>
/// One layer's experts for the next placement, loaded beside those in force
/// (<see cref="ShardedExperts.Stage"/>): the rank's memory holds both until the switch, which adopts
/// these stacks and frees the old ones, or until this is disposed (the change abandoned).
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

    /// <summary>The version of the placement this layer's experts were staged for.</summary>
    public long Version { get; }

    /// <summary>Hands the stacks over to the layer; this no longer owns them.</summary>
    internal (Tensor GateUp, Tensor Down) Take()
    {
        var taken = (_gateUp ?? throw new ObjectDisposedException(nameof(StagedExperts)), _down!);
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
