using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Layers;

/// <summary>
/// A mixture-of-experts MLP: shared experts on every token plus routed experts chosen by
/// <see cref="MoeGate"/>. Which experts exist here comes from an <see cref="ExpertPlacement"/>
/// (only this rank's are allocated and loaded, stacked); where routed tokens are computed is the
/// <see cref="Dispatcher"/>'s business, so expert parallelism never touches this class.
/// </summary>
public sealed class MoeLayer : nn.Module<Tensor, Tensor>
{
    private readonly MoeGate gate;
    private readonly StackedExperts experts;
    private readonly DenseMlp? shared_experts;
    private readonly int _layerIndex;
    private readonly int _expertCount;
    private Tensor? _lastCounts;

    public MoeLayer(string name, int layerIndex, DeepSeekConfig config, ExpertPlacement placement, int rank, ScalarType dtype, Device device) : base(name)
    {
        if (placement.ExpertCount != config.NRoutedExperts)
            throw new ArgumentException($"The expert placement covers {placement.ExpertCount} experts but config.json has n_routed_experts = {config.NRoutedExperts}.", nameof(placement));
        _layerIndex = layerIndex;
        _expertCount = config.NRoutedExperts;
        gate = new MoeGate(nameof(gate), config, dtype, device);
        experts = new StackedExperts(nameof(experts), [.. placement.ExpertsOn(rank)], config.HiddenSize, config.MoeIntermediateSize, dtype, device);
        if (config.NSharedExperts > 0)
            shared_experts = new DenseMlp(nameof(shared_experts), config.HiddenSize, (long)config.MoeIntermediateSize * config.NSharedExperts, dtype, device);
        Dispatcher = new LocalExpertDispatcher(experts, config.NRoutedExperts, config.NumExpertsPerTok, ExpertDeviceProfile.For(device));
        RegisterComponents();
    }

    /// <summary>The routed experts allocated in this process, stacked.</summary>
    public StackedExperts LocalExperts => experts;

    public IExpertDispatcher Dispatcher { get; set; }

    public int LayerIndex => _layerIndex;

    /// <summary>
    /// (Token, slot) pairs per expert of the latest forward, <c>[n_routed_experts]</c> int64 on the
    /// device; <see cref="CollectLoads"/> reads every layer's back at once.
    /// </summary>
    public Tensor? LastCounts => _lastCounts;

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var (ids, weights) = gate.forward(hidden);
        var flatIds = ids.reshape(-1);
        // Not bincount: on CUDA it reads the largest id back to size its output (a synchronisation).
        var counts = zeros([_expertCount], ScalarType.Int64, hidden.device).scatter_add_(0, flatIds, ones_like(flatIds));
        _lastCounts?.Dispose();
        _lastCounts = counts.DetachFromDisposeScope();
        var routed = Dispatcher.Dispatch(new RoutedTokens(_layerIndex, hidden, ids, weights, counts));
        var output = shared_experts is null ? routed : routed + shared_experts.forward(hidden);
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Every layer's expert counts from its latest forward, copied to the host in one transfer (one
    /// synchronisation per forward instead of one per layer).
    /// </summary>
    public static IReadOnlyList<ExpertLoad> CollectLoads(IEnumerable<MoeLayer> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        var list = layers.ToList();
        if (list.Count == 0) return [];
        using var scope = NewDisposeScope();
        var counts = stack(list.Select(l => l._lastCounts ?? throw new InvalidOperationException($"MoE layer {l._layerIndex} has not run a forward yet.")).ToArray()).cpu();
        var width = counts.shape[1];
        var flat = counts.data<long>().ToArray();
        return [.. list.Select((l, i) => new ExpertLoad(l._layerIndex, flat.AsSpan((int)(i * width), (int)width).ToArray()))];
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _lastCounts?.Dispose();
        base.Dispose(disposing);
    }
}
