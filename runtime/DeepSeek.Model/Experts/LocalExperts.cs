using DeepSeek.Model.Native;
using static TorchSharp.torch;

namespace DeepSeek.Model.Experts;

/// <summary>
/// Computes the routed experts this process holds (<see cref="RoutedExperts"/>' stacks) by one of
/// six <see cref="ExpertComputePath"/>s. With the native grouped GEMM (CUDA, bf16) every batch takes
/// GroupedGemm; int4 experts with the native helper take Int4Fused up to <see cref="Int4Experts.FusedMaxTokens"/>
/// tokens and Sorted beyond. Otherwise (see <see cref="ExpertCostModel"/>): Gather or Dense chosen
/// on the host from the token count alone, never synchronising with the device; beyond them the
/// pairs are sorted by slot and the per-slot counts read back once, and those counts choose Sorted or
/// Grouped. All compute <c>Σ_k weight[t,k] · expert_{slot[t,k]}(hidden[t])</c>.
/// Gather, Dense and Grouped index the stacks by slot for every pair, so they need every routed
/// expert here; a shard holding only some always takes Sorted, which skips the pairs whose slot is
/// the "elsewhere" sentinel (<see cref="RoutedTokens"/>).
/// </summary>
public sealed class LocalExperts
{
    private readonly Tensor _gateUp;
    private readonly Tensor _down;
    private readonly long _inter;
    private readonly int _held;
    private readonly bool _holdsAllExperts;
    private readonly MoeShape _shape;
    private readonly ExpertDeviceProfile _device;

    private readonly Int4Experts? _int4;
    private readonly NativeHelper? _groupedKernel;

    /// <remarks>
    /// <c>int4</c>: the held experts as int4 stacks; computed by their fused kernel (few tokens, CUDA)
    /// or by the Sorted path, each active expert dequantised once, since the other paths index bf16 stacks.
    /// <c>groupedKernel</c>: the native helper whose <c>_grouped_mm</c> computes every batch
    /// (<see cref="ExpertComputePath.GroupedGemm"/>) when the stacks are bf16 on CUDA and hold every expert.
    /// </remarks>
    public LocalExperts(RoutedExperts experts, ExpertDeviceProfile device, Int4Experts? int4 = null, NativeHelper? groupedKernel = null)
    {
        ArgumentNullException.ThrowIfNull(experts);
        ArgumentNullException.ThrowIfNull(device);
        _gateUp = experts.GateUp;
        _down = experts.Down;
        _inter = experts.IntermediateSize;
        _held = experts.HeldExperts.Count;
        _device = device;
        _int4 = int4;
        // Every path indexes the stacks by slot = expert id; int4 experts are not in the stacks.
        _holdsAllExperts = !experts.IsSharded && int4 is null;
        _shape = new MoeShape(_held, experts.ExpertsPerToken, experts.HiddenSize, experts.IntermediateSize, (int)_gateUp.element_size());
        Thresholds = _holdsAllExperts ? ExpertCostModel.Thresholds(_shape, device) : ExpertPathThresholds.Only(ExpertComputePath.Sorted);
        _groupedKernel = _holdsAllExperts && _gateUp.device_type == TorchSharp.DeviceType.CUDA && _gateUp.dtype == ScalarType.BFloat16 ? groupedKernel : null;
    }

    /// <summary>
    /// Tokens up to which a batch computes without a host synchronisation (so a step of that many can
    /// be captured): every count with the grouped GEMM, <see cref="Int4Experts.FusedMaxTokens"/> with the
    /// int4 kernel, none otherwise.
    /// </summary>
    public long SyncFreeTokens => _groupedKernel is not null ? long.MaxValue : _int4 is { UsesKernel: true } ? Int4Experts.FusedMaxTokens : 0;

    /// <summary>Where the paths switch; settable to force a path (tests, measurements).</summary>
    public ExpertPathThresholds Thresholds { get; set; }

    /// <summary>
    /// The path a batch of <paramref name="tokens"/> tokens takes, or null when it is a large batch
    /// whose path <see cref="LargeBatchPathFor"/> picks from the counts.
    /// </summary>
    public ExpertComputePath? PathFor(long tokens) =>
        _groupedKernel is not null ? ExpertComputePath.GroupedGemm
        : _int4 is { UsesKernel: true } && tokens <= Int4Experts.FusedMaxTokens ? ExpertComputePath.Int4Fused
        : _holdsAllExperts ? Thresholds.Choose(tokens) : ExpertComputePath.Sorted;

    /// <summary>
    /// Sorted or Grouped for a large batch with these per-slot pair counts (read on the host):
    /// forced by <see cref="Thresholds"/>, else the cheaper by <see cref="ExpertCostModel.LargeBatchPath"/>;
    /// Sorted on a shard that holds only some experts.
    /// </summary>
    public ExpertComputePath LargeBatchPathFor(IReadOnlyList<long> tokensPerExpert) =>
        !_holdsAllExperts ? ExpertComputePath.Sorted
        : Thresholds.LargeBatchPath ?? ExpertCostModel.LargeBatchPath(tokensPerExpert, _shape, _device);

    /// <returns><c>[T, hidden]</c> in the dtype of <see cref="RoutedTokens.Hidden"/>; zero for tokens with no pair here.</returns>
    public Tensor Compute(RoutedTokens tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        using var scope = NewDisposeScope();
        var output = PathFor(tokens.Hidden.shape[0]) switch
        {
            ExpertComputePath.Gather => Gather(tokens),
            ExpertComputePath.Dense => Dense(tokens),
            ExpertComputePath.GroupedGemm => GroupedGemm(tokens, _groupedKernel is { } kernel ? kernel.GroupedMm : ReferenceGroupedMm),
            ExpertComputePath.Int4Fused => _int4!.ComputeFused(tokens),
            _ => LargeBatch(tokens),
        };
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>Per (token, slot) pair: its expert's weights gathered, then two bmm; slots combined by one more bmm.</summary>
    private Tensor Gather(RoutedTokens tokens)
    {
        var (hidden, ids) = (tokens.Hidden, tokens.Slots);
        long count = hidden.shape[0], topK = ids.shape[1], size = hidden.shape[1], inter = _inter;
        var flatIds = ids.reshape(-1);
        var inputs = hidden.unsqueeze(1).expand(count, topK, size).reshape(count * topK, size, 1);
        var gateUp = bmm(_gateUp.index_select(0, flatIds), inputs);
        var activated = nn.functional.silu(gateUp.narrow(1, 0, inter)) * gateUp.narrow(1, inter, inter);
        var outputs = bmm(_down.index_select(0, flatIds), activated).view(count, topK, size);
        return bmm(tokens.Weights.unsqueeze(1), outputs).squeeze(1);
    }

    /// <summary>
    /// Pairs sorted by expert on the device; gate/up and down each one <c>_grouped_mm</c> over the
    /// sorted rows, with each expert's row range given by the cumulative counts on the device. The
    /// outputs are put back in pair order and combined per token by a bmm with the routing weights,
    /// not by <c>index_add</c>, whose atomic adds would sum a token's experts in a varying order.
    /// </summary>
    private Tensor GroupedGemm(RoutedTokens tokens, Func<Tensor, Tensor, Tensor, Tensor> groupedMm)
    {
        var (hidden, slots) = (tokens.Hidden, tokens.Slots);
        long count = hidden.shape[0], topK = slots.shape[1], inter = _inter;
        var (_, order) = slots.reshape(-1).sort(0, false, stable: true);
        var offsets = tokens.PairsPerSlot.cumsum(0).to(ScalarType.Int32);
        var inputs = hidden.index_select(0, order.div(topK, rounding_mode: RoundingMode.floor));
        var gateUp = groupedMm(inputs, _gateUp.transpose(1, 2), offsets);
        var activated = nn.functional.silu(gateUp.narrow(1, 0, inter)) * gateUp.narrow(1, inter, inter);
        var outputs = groupedMm(activated, _down.transpose(1, 2), offsets);
        var inPairOrder = empty_like(outputs).index_copy_(0, order, outputs).view(count, topK, hidden.shape[1]);
        return bmm(tokens.Weights.unsqueeze(1), inPairOrder).squeeze(1);
    }

    /// <summary>
    /// What <c>_grouped_mm</c> computes, one matmul per group with the offsets read on the host: the
    /// GroupedGemm path when it is forced without the native kernel (the CPU tests of its sorting and
    /// combining). Rows past the last offset stay zero.
    /// </summary>
    private static Tensor ReferenceGroupedMm(Tensor rows, Tensor weights, Tensor offsets)
    {
        var ends = offsets.cpu().data<int>().ToArray();
        var output = zeros([rows.shape[0], weights.shape[2]], rows.dtype, rows.device);
        var start = 0;
        for (var group = 0; group < ends.Length; group++)
        {
            if (ends[group] > start) output.narrow(0, start, ends[group] - start).copy_(rows.narrow(0, start, ends[group] - start).matmul(weights[group]));
            start = ends[group];
        }
        return output;
    }

    /// <summary>
    /// Every expert on every token: one GEMM against all experts' gate/up rows, one bmm for down,
    /// then a bmm with the dense routing matrix (zero where a token did not pick the expert).
    /// </summary>
    private Tensor Dense(RoutedTokens tokens)
    {
        var hidden = tokens.Hidden;
        long count = hidden.shape[0], size = hidden.shape[1], inter = _inter, experts = _held;
        var gateUp = nn.functional.linear(hidden, _gateUp.view(experts * 2 * inter, size)).view(count, experts, 2 * inter);
        var activated = nn.functional.silu(gateUp.narrow(2, 0, inter)) * gateUp.narrow(2, inter, inter);
        var outputs = bmm(activated.transpose(0, 1), _down.transpose(1, 2));
        // scatter_add: a token that names one expert in two slots gets both weights, as in the sum.
        var routing = zeros([count, experts], tokens.Weights.dtype, hidden.device).scatter_add_(1, tokens.Slots, tokens.Weights);
        // Experts a token did not pick still ran on it; an overflow there (inf) times a zero weight
        // would be NaN in the sum, so their outputs are zeroed first rather than only weighted by 0.
        outputs.masked_fill_(routing.eq(0).t().unsqueeze(-1), 0.0);
        return bmm(routing.unsqueeze(1), outputs.transpose(0, 1)).squeeze(1);
    }

    /// <summary>
    /// Pairs sorted by expert on the device, then the counts read back (the one synchronisation),
    /// which pick Sorted or Grouped.
    /// </summary>
    private Tensor LargeBatch(RoutedTokens tokens)
    {
        var (sortedIds, order) = tokens.Slots.reshape(-1).sort(0, false);
        var counts = tokens.PairsPerSlot.cpu().data<long>().ToArray();
        return LargeBatchPathFor(counts) == ExpertComputePath.Grouped
            ? Grouped(tokens, sortedIds, order, counts)
            : Sorted(tokens, order, counts);
    }

    /// <summary>
    /// Each active expert runs once on all its tokens; weighted outputs summed back per token with
    /// one <c>index_add</c>. Pairs of the sentinel slot sort last and are not counted, so they are skipped.
    /// </summary>
    private Tensor Sorted(RoutedTokens tokens, Tensor order, long[] counts)
    {
        var output = zeros_like(tokens.Hidden);
        var pairs = counts.Sum();
        if (pairs == 0) return output;
        order = order.narrow(0, 0, pairs);
        var topK = tokens.Slots.shape[1];
        var tokenOfPair = order.div(topK, rounding_mode: RoundingMode.floor);
        var inputs = tokens.Hidden.index_select(0, tokenOfPair);
        var weights = tokens.Weights.reshape(-1).index_select(0, order).unsqueeze(1);

        var outputs = new List<Tensor>();
        long offset = 0;
        for (var slot = 0; slot < counts.Length; slot++)
        {
            var count = counts[slot];
            if (count == 0) continue;
            // Each expert's temporaries (int4 experts: its dequantised weights) go before the next.
            using (NewDisposeScope()) outputs.Add(Expert(slot, inputs.narrow(0, offset, count)).MoveToOuterDisposeScope());
            offset += count;
        }
        return output.index_add_(0, tokenOfPair, cat(outputs, 0).mul_(weights), 1);
    }

    /// <summary>One expert's SwiGLU on <c>[n, hidden]</c> rows: <c>down(silu(gate(x)) · up(x))</c>.</summary>
    private Tensor Expert(int slot, Tensor input)
    {
        var (gateUpWeight, downWeight) = _int4 is not null ? _int4.Dequantize(slot, input.dtype) : (_gateUp[slot], _down[slot]);
        var gateUp = nn.functional.linear(input, gateUpWeight);
        var activated = nn.functional.silu(gateUp.narrow(-1, 0, _inter)) * gateUp.narrow(-1, _inter, _inter);
        return nn.functional.linear(activated, downWeight);
    }

    /// <summary>
    /// Sorted pairs copied into a zero-padded <c>[E, capacity, hidden]</c> buffer (row
    /// <c>expert·capacity + rank among the expert's pairs</c>), gate/up and down as one <c>bmm</c>
    /// each over all experts, the valid rows read back, weighted and summed per token. Experts are
    /// taken in chunks whose temporaries fit the device's cap (one chunk unless routing is skewed or
    /// the batch huge). Needs every routed expert here: slot = expert id.
    /// </summary>
    private Tensor Grouped(RoutedTokens tokens, Tensor sortedIds, Tensor order, long[] counts)
    {
        var hidden = tokens.Hidden;
        long topK = tokens.Slots.shape[1], size = hidden.shape[1], inter = _inter, experts = counts.Length;
        var output = zeros_like(hidden);
        var capacity = ExpertCostModel.GroupedCapacity(counts.Length == 0 ? 0 : counts.Max());
        if (capacity == 0) return output;
        var pairs = sortedIds.shape[0];
        var tokenOfPair = order.div(topK, rounding_mode: RoundingMode.floor);
        var inputs = hidden.index_select(0, tokenOfPair);
        var weights = tokens.Weights.reshape(-1).index_select(0, order).unsqueeze(1);
        // Sorted pair i of expert e goes to row e·capacity + (i − first pair of e); the shift per
        // expert comes from the device's copy of the counts, so no second host transfer.
        var deviceCounts = tokens.PairsPerSlot;
        var shift = arange(0, experts * capacity, capacity, ScalarType.Int64, hidden.device) - (deviceCounts.cumsum(0) - deviceCounts);
        var rowOfPair = shift.index_select(0, sortedIds) + arange(pairs, ScalarType.Int64, hidden.device);

        var chunk = ExpertCostModel.GroupedChunkExperts(capacity, _shape, _device);
        long firstPair = 0;
        for (long first = 0; first < experts; first += chunk)
        {
            var n = Math.Min(chunk, experts - first);
            var chunkPairs = counts.AsSpan((int)first, (int)n).ToArray().Sum();
            if (chunkPairs == 0) continue;
            // Each chunk's temporaries are freed before the next, so the cap bounds the peak.
            using var chunkScope = NewDisposeScope();
            var rows = rowOfPair.narrow(0, firstPair, chunkPairs);
            if (first > 0) rows = rows - (first * capacity);
            var padded = zeros([n * capacity, size], hidden.dtype, hidden.device).index_copy_(0, rows, inputs.narrow(0, firstPair, chunkPairs));
            var gateUp = bmm(padded.view(n, capacity, size), _gateUp.narrow(0, first, n).transpose(1, 2));
            var activated = nn.functional.silu(gateUp.narrow(2, 0, inter)) * gateUp.narrow(2, inter, inter);
            var down = bmm(activated, _down.narrow(0, first, n).transpose(1, 2)).view(n * capacity, size);
            var combined = down.index_select(0, rows).mul_(weights.narrow(0, firstPair, chunkPairs));
            output.index_add_(0, tokenOfPair.narrow(0, firstPair, chunkPairs), combined, 1);
            firstPair += chunkPairs;
        }
        return output;
    }
}
