using static TorchSharp.torch;

namespace DeepSeek.Model.Experts;

/// <summary>
/// Computes routed experts in this process from <see cref="StackedExperts"/>, by one of three
/// <see cref="ExpertComputePath"/>s chosen on the host from the token count alone (see
/// <see cref="ExpertCostModel"/>). Gather and Dense never synchronise with the device; Sorted reads
/// the per-expert counts back once. All three compute <c>Σ_k weight[t,k] · expert_{id[t,k]}(hidden[t])</c>.
/// Gather and Dense index the stacks by expert id, so they need every routed expert here; a rank
/// holding only some (expert parallelism without its dispatcher) always takes Sorted, which names
/// an expert that is not loaded.
/// </summary>
public sealed class LocalExpertDispatcher : IExpertDispatcher
{
    private readonly StackedExperts _experts;
    private readonly Dictionary<int, int> _slotOfExpert;
    private readonly bool _holdsAllExperts;

    public LocalExpertDispatcher(StackedExperts experts, int routedExperts, int expertsPerToken, ExpertDeviceProfile device)
    {
        ArgumentNullException.ThrowIfNull(experts);
        ArgumentNullException.ThrowIfNull(device);
        _experts = experts;
        _slotOfExpert = experts.ExpertIds.Select((expert, slot) => (expert, slot)).ToDictionary(p => p.expert, p => p.slot);
        _holdsAllExperts = routedExperts > 0 && experts.ExpertIds.SequenceEqual(Enumerable.Range(0, routedExperts));
        var shape = new MoeShape(experts.ExpertIds.Count, expertsPerToken, experts.HiddenSize, experts.IntermediateSize, (int)experts.GateUp.element_size());
        Thresholds = _holdsAllExperts ? ExpertCostModel.Thresholds(shape, device) : ExpertPathThresholds.Only(ExpertComputePath.Sorted);
    }

    /// <summary>Where the paths switch; settable to force a path (tests, measurements).</summary>
    public ExpertPathThresholds Thresholds { get; set; }

    /// <summary>The path a batch of <paramref name="tokens"/> tokens takes.</summary>
    public ExpertComputePath PathFor(long tokens) =>
        _holdsAllExperts ? Thresholds.Choose(tokens) : ExpertComputePath.Sorted;

    public Tensor Dispatch(RoutedTokens tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        using var scope = NewDisposeScope();
        var output = PathFor(tokens.Hidden.shape[0]) switch
        {
            ExpertComputePath.Gather => Gather(tokens),
            ExpertComputePath.Dense => Dense(tokens),
            _ => Sorted(tokens),
        };
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>Per (token, slot) pair: its expert's weights gathered, then two bmm; slots combined by one more bmm.</summary>
    private Tensor Gather(RoutedTokens tokens)
    {
        var (hidden, ids) = (tokens.Hidden, tokens.ExpertIds);
        long count = hidden.shape[0], topK = ids.shape[1], size = hidden.shape[1], inter = _experts.IntermediateSize;
        var flatIds = ids.reshape(-1);
        var inputs = hidden.unsqueeze(1).expand(count, topK, size).reshape(count * topK, size, 1);
        var gateUp = bmm(_experts.GateUp.index_select(0, flatIds), inputs);
        var activated = nn.functional.silu(gateUp.narrow(1, 0, inter)) * gateUp.narrow(1, inter, inter);
        var outputs = bmm(_experts.Down.index_select(0, flatIds), activated).view(count, topK, size);
        return bmm(tokens.Weights.unsqueeze(1), outputs).squeeze(1);
    }

    /// <summary>
    /// Every expert on every token: one GEMM against all experts' gate/up rows, one bmm for down,
    /// then a bmm with the dense routing matrix (zero where a token did not pick the expert).
    /// </summary>
    private Tensor Dense(RoutedTokens tokens)
    {
        var hidden = tokens.Hidden;
        long count = hidden.shape[0], size = hidden.shape[1], inter = _experts.IntermediateSize, experts = _experts.ExpertIds.Count;
        var gateUp = nn.functional.linear(hidden, _experts.GateUp.view(experts * 2 * inter, size)).view(count, experts, 2 * inter);
        var activated = nn.functional.silu(gateUp.narrow(2, 0, inter)) * gateUp.narrow(2, inter, inter);
        var outputs = bmm(activated.transpose(0, 1), _experts.Down.transpose(1, 2));
        // scatter_add: a token that names one expert in two slots gets both weights, as in the sum.
        var routing = zeros([count, experts], tokens.Weights.dtype, hidden.device).scatter_add_(1, tokens.ExpertIds, tokens.Weights);
        // Experts a token did not pick still ran on it; an overflow there (inf) times a zero weight
        // would be NaN in the sum, so their outputs are zeroed first rather than only weighted by 0.
        outputs.masked_fill_(routing.eq(0).t().unsqueeze(-1), 0.0);
        return bmm(routing.unsqueeze(1), outputs.transpose(0, 1)).squeeze(1);
    }

    /// <summary>
    /// Pairs sorted by expert so each active expert runs once on all its tokens; weighted outputs
    /// summed back per token with one <c>index_add</c>. Reads the counts back (one synchronisation).
    /// </summary>
    private Tensor Sorted(RoutedTokens tokens)
    {
        var topK = tokens.ExpertIds.shape[1];
        var flatIds = tokens.ExpertIds.reshape(-1);
        var order = flatIds.argsort(0, false);
        var tokenOfPair = order.div(topK, rounding_mode: RoundingMode.floor);
        var inputs = tokens.Hidden.index_select(0, tokenOfPair);
        var weights = tokens.Weights.reshape(-1).index_select(0, order).unsqueeze(1);
        var counts = tokens.TokensPerExpert.cpu().data<long>().ToArray();

        var outputs = new List<Tensor>();
        long offset = 0;
        for (var expert = 0; expert < counts.Length; expert++)
        {
            var count = counts[expert];
            if (count == 0) continue;
            if (!_slotOfExpert.TryGetValue(expert, out var slot))
                throw new InvalidOperationException($"Layer {tokens.LayerIndex} routed tokens to expert {expert}, which is not loaded in this process.");
            outputs.Add(_experts.ForwardSlot(slot, inputs.narrow(0, offset, count)));
            offset += count;
        }
        var combined = cat(outputs, 0).mul_(weights);
        return zeros_like(tokens.Hidden).index_add_(0, tokenOfPair, combined, 1);
    }
}
