using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSeek.Model.Layers;

/// <summary>
/// A mixture-of-experts MLP: shared experts on every token plus routed experts chosen by
/// <see cref="MoeGate"/>. Which experts exist here comes from an <see cref="ExpertPlacement"/>
/// (only this rank's are allocated and loaded); where routed tokens are computed is the
/// <see cref="Dispatcher"/>'s business, so expert parallelism never touches this class.
/// </summary>
public sealed class MoeLayer : nn.Module<Tensor, Tensor>
{
    private readonly MoeGate gate;
    private readonly ModuleDict<DenseMlp> experts;
    private readonly DenseMlp? shared_experts;
    private readonly int _layerIndex;
    private readonly int _expertCount;

    public MoeLayer(string name, int layerIndex, DeepSeekConfig config, ExpertPlacement placement, int rank, ScalarType dtype, Device device) : base(name)
    {
        if (placement.ExpertCount != config.NRoutedExperts)
            throw new ArgumentException($"The expert placement covers {placement.ExpertCount} experts but config.json has n_routed_experts = {config.NRoutedExperts}.", nameof(placement));
        _layerIndex = layerIndex;
        _expertCount = config.NRoutedExperts;
        gate = new MoeGate(nameof(gate), config, dtype, device);
        experts = new ModuleDict<DenseMlp>();
        var local = new Dictionary<int, DenseMlp>();
        foreach (var expert in placement.ExpertsOn(rank))
        {
            var mlp = new DenseMlp("expert", config.HiddenSize, config.MoeIntermediateSize, dtype, device);
            experts.Add(expert.ToString(System.Globalization.CultureInfo.InvariantCulture), mlp);
            local[expert] = mlp;
        }
        if (config.NSharedExperts > 0)
            shared_experts = new DenseMlp(nameof(shared_experts), config.HiddenSize, (long)config.MoeIntermediateSize * config.NSharedExperts, dtype, device);
        LocalExperts = local;
        Dispatcher = new LocalExpertDispatcher(LocalExperts);
        RegisterComponents();
    }

    /// <summary>The routed experts allocated in this process, by expert id.</summary>
    public IReadOnlyDictionary<int, DenseMlp> LocalExperts { get; }

    public IExpertDispatcher Dispatcher { get; set; }

    public int LayerIndex => _layerIndex;

    /// <summary>Tokens per expert of the latest forward (routing needs them on the host anyway).</summary>
    public ExpertLoad? LastLoad { get; private set; }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var (ids, weights) = gate.forward(hidden);
        var counts = bincount(ids.reshape(-1), minlength: _expertCount).cpu().data<long>().ToArray();
        LastLoad = new ExpertLoad(_layerIndex, counts);
        var routed = Dispatcher.Dispatch(new RoutedTokens(_layerIndex, hidden, ids, weights, counts));
        var output = shared_experts is null ? routed : routed + shared_experts.forward(hidden);
        return output.MoveToOuterDisposeScope();
    }
}
