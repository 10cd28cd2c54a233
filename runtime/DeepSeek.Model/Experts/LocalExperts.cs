using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Experts;

/// <summary>
/// Computes the routed experts this process holds (<see cref="RoutedExperts"/>' stacks) by the one
/// <see cref="ExpertComputePath"/> chosen for the layer when it is loaded (<see cref="Choose"/>): the
/// native grouped GEMM for bf16 experts on CUDA that hold every expert, the int4 kernels for int4
/// experts on CUDA (up to <see cref="Int4Experts.FusedMaxTokens"/> tokens), Dense for a small stack
/// held whole, Sorted otherwise. All compute <c>Σ_k weight[t,k] · expert_{slot[t,k]}(hidden[t])</c>; a shard holding only some experts
/// skips the pairs whose slot is the "elsewhere" sentinel (<see cref="RoutedTokens"/>).
/// </summary>
public sealed class LocalExperts
{
    private readonly Tensor _gateUp;
    private readonly Tensor _down;
    private readonly long _inter;
    private readonly Int4Experts? _int4;
    private readonly NativeHelper? _kernel;
    private readonly Fp8Stacks? _fp8;
    // A shard's picks of experts held elsewhere carry the sentinel slot (the held count); the grouped GEMM
    // leaves their rows uncomputed, so they are zeroed before the weighted sum.
    private readonly bool _sentinelSlots;
    private (PendingTensor GateUp, PendingTensor Down)? _ahead;

    /// <remarks>
    /// <c>int4</c>: the held experts as int4 stacks, computed by their fused kernel (few tokens, CUDA)
    /// or by the Sorted path, each active expert dequantised once, since the other path indexes bf16 stacks.
    /// <c>kernel</c>: the native helper, whose <c>_grouped_mm</c> computes bf16 experts on CUDA.
    /// </remarks>
    public LocalExperts(RoutedExperts experts, Int4Experts? int4 = null, NativeHelper? kernel = null)
        : this(experts, Choose(experts, int4, kernel), int4, kernel)
    {
    }

    /// <summary>Computes by <paramref name="path"/> whatever the experts are (tests: a path on the CPU, the grouped GEMM through its reference).</summary>
    internal LocalExperts(RoutedExperts experts, ExpertComputePath path, Int4Experts? int4 = null, NativeHelper? kernel = null)
    {
        ArgumentNullException.ThrowIfNull(experts);
        _gateUp = experts.GateUp;
        _down = experts.Down;
        _inter = experts.IntermediateSize;
        // The helper dequantises FP8 stacks on CUDA in bf16, whatever the path (a shard's Sorted included).
        var fp8Kernel = kernel is not null && experts.GateUp.device_type == DeviceType.CUDA && experts.ComputeDType == ScalarType.BFloat16 ? kernel : null;
        _fp8 = experts.Fp8 is { } blocks ? new Fp8Stacks(blocks, experts.GateUpScaleInv!, experts.DownScaleInv!, experts.ComputeDType, fp8Kernel) : null;
        _int4 = int4;
        _kernel = kernel;
        _sentinelSlots = experts.IsSharded;
        Path = path;
    }

    /// <summary>
    /// Stacks held beside a layer's own (<c>Parallelism.StagedExperts</c>: another placement's experts a
    /// rank still or already answers peers for), computed by the path of a shard: Sorted, plain stacks.
    /// </summary>
    internal LocalExperts(Tensor gateUp, Tensor down, long intermediateSize)
    {
        ArgumentNullException.ThrowIfNull(gateUp);
        ArgumentNullException.ThrowIfNull(down);
        (_gateUp, _down, _inter) = (gateUp, down, intermediateSize);
        Path = ExpertComputePath.Sorted;
    }

    /// <summary>The layer's path, fixed for its life.</summary>
    public ExpertComputePath Path { get; }

    /// <summary>
    /// The path for <paramref name="experts"/>: int4 experts take their kernel when they were packed for
    /// it (CUDA); bf16 stacks on CUDA take <paramref name="kernel"/>'s grouped GEMM (a shard's too: the
    /// picks of experts held elsewhere sort last, past every group, and their rows are zeroed), FP8 stacks
    /// its FP8 kernels; the rest Sorted, or Dense for a small stack held whole.
    /// </summary>
    public static ExpertComputePath Choose(RoutedExperts experts, Int4Experts? int4, NativeHelper? kernel)
    {
        ArgumentNullException.ThrowIfNull(experts);
        if (int4 is not null) return int4.UsesKernel ? ExpertComputePath.Int4Fused : ExpertComputePath.Sorted;
        if (kernel is not null && experts.GateUp.device_type == DeviceType.CUDA && experts.ComputeDType == ScalarType.BFloat16)
            return experts.Fp8 is null ? ExpertComputePath.GroupedGemm : ExpertComputePath.Fp8Fused;
        // FP8 stacks take Sorted, which dequantises the active experts only.
        return experts.Fp8 is null && !experts.IsSharded && experts.ResidentBytes <= DenseMaxStackBytes ? ExpertComputePath.Dense : ExpertComputePath.Sorted;
    }

    /// <summary>
    /// The largest stack (every expert's gate, up and down) that <see cref="ExpertComputePath.Dense"/>
    /// computes whole: at 1 MiB reading it all costs about what Sorted's per-expert operations cost
    /// for one or two active experts on a CPU (a few µs each at ~10 GB/s); real models' stacks are
    /// hundreds of MiB and take Sorted.
    /// </summary>
    public const long DenseMaxStackBytes = 1 << 20;

    /// <summary>
    /// Tokens up to which a batch computes without a host synchronisation (so a step of that many can
    /// be captured): every count with the grouped GEMM and the FP8 kernels (past
    /// <see cref="Fp8FusedMaxTokens"/> the stacks are dequantised on the device for the grouped GEMM),
    /// <see cref="Int4Experts.FusedMaxTokens"/> with the int4 kernel, none with Sorted.
    /// </summary>
    public long SyncFreeTokens => Path switch
    {
        ExpertComputePath.GroupedGemm or ExpertComputePath.Fp8Fused => long.MaxValue,
        ExpertComputePath.Int4Fused => Int4Experts.FusedMaxTokens,
        _ => 0, // Dense needs no synchronisation either, but only demo-sized models take it: not worth a captured graph

    };

    /// <returns><c>[T, hidden]</c> in the dtype of <see cref="RoutedTokens.Hidden"/>; zero for tokens with no pair here.</returns>
    public Tensor Compute(RoutedTokens tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        try
        {
            using var scope = NewDisposeScope();
            var output = Path switch
            {
                ExpertComputePath.GroupedGemm => GroupedGemm(tokens, _kernel is { } kernel ? kernel.GroupedMm : ReferenceGroupedMm),
                ExpertComputePath.Int4Fused when tokens.Hidden.shape[0] <= Int4Experts.FusedMaxTokens => _int4!.ComputeFused(tokens),
                ExpertComputePath.Fp8Fused when tokens.Hidden.shape[0] <= Fp8FusedMaxTokens => Fp8Fused(tokens),
                ExpertComputePath.Fp8Fused => GroupedGemm(tokens, _kernel!.GroupedMm),
                ExpertComputePath.Dense => Dense(tokens),
                _ => Sorted(tokens),
            };
            return output.MoveToOuterDisposeScope();
        }
        finally
        {
            DropAhead();
        }
    }

    /// <summary>
    /// Starts dequantising the layer's FP8 stacks on a side stream when <paramref name="tokens"/> will take
    /// the grouped GEMM (more than <see cref="Fp8FusedMaxTokens"/>), called before the layer's attention:
    /// the stacks (one byte read, two written per weight, ~0.5 ms a V2-Lite layer on an H100) are then
    /// written while attention, bound by arithmetic, runs, instead of after it. The next
    /// <see cref="Compute"/> takes them (or drops them when its batch takes another path); a no-op
    /// anywhere else. The stacks are freed when that Compute ends (after its products are queued), one
    /// layer's scratch at a time as without the overlap.
    /// </summary>
    public void DequantizeAhead(long tokens)
    {
        DropAhead();
        if (!AheadEnabled || Path != ExpertComputePath.Fp8Fused || tokens <= Fp8FusedMaxTokens || _fp8?.Kernel is not { } kernel) return;
        var gateUp = kernel.Fp8DequantizeAhead(_gateUp, _fp8.GateUpScaleInv, splitRows: _inter);
        try
        {
            _ahead = (gateUp, kernel.Fp8DequantizeAhead(_down, _fp8.DownScaleInv));
        }
        catch
        {
            gateUp.Dispose();
            throw;
        }
    }

    /// <summary><c>DEEPSEEK_FP8_AHEAD=0</c> dequantises in order instead (the same values), for benchmarks that measure the overlap.</summary>
    private static readonly bool AheadEnabled = Environment.GetEnvironmentVariable("DEEPSEEK_FP8_AHEAD") != "0";

    private void DropAhead()
    {
        if (_ahead is not { } ahead) return;
        _ahead = null;
        ahead.GateUp.Dispose();
        ahead.Down.Dispose();
    }

    /// <summary>
    /// Tokens up to which FP8 experts take the helper's own kernels (<see cref="NativeHelper.Fp8Moe"/>),
    /// which read each chosen expert's bytes once (a block per pick on CUDA cores for a few tokens,
    /// tensor-core tiles per expert beyond); a larger batch (a prefill) dequantises the layer's stacks to
    /// bf16 on the device and takes the grouped GEMM. On an H100 the tiles took 512 µs for V2-Lite's
    /// 64 experts at 256 tokens, where the grouped GEMM alone took 474 µs before the 1.1 GB of
    /// dequantised stacks were written (docs/benchmarks.md).
    /// </summary>
    public const long Fp8FusedMaxTokens = 256;

    private Tensor Fp8Fused(RoutedTokens tokens) =>
        _kernel!.Fp8Moe(tokens.Hidden, tokens.Slots, tokens.Weights, _gateUp, _fp8!.GateUpScaleInv, _down, _fp8.DownScaleInv);

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
        using var picksPerToken = topK.ToScalar(); // alive until div has run (Modeling.HeldScalars says why)
        var inputs = hidden.index_select(0, order.div(picksPerToken, rounding_mode: RoundingMode.floor));
        var gateUp = groupedMm(inputs, GateUpStack().transpose(1, 2), offsets);
        var activated = nn.functional.silu(gateUp.narrow(1, 0, inter)) * gateUp.narrow(1, inter, inter);
        var outputs = groupedMm(activated, DownStack().transpose(1, 2), offsets);
        if (_sentinelSlots)
        {
            // Rows past the last group (picks for other ranks) are left as the product found them.
            var computed = offsets.narrow(0, offsets.shape[0] - 1, 1).to(ScalarType.Int64);
            outputs.masked_fill_(HeldScalars.Range(outputs.shape[0], outputs.device).ge(computed).unsqueeze(1), HeldScalars.ZeroReal);
        }
        var inPairOrder = empty_like(outputs).index_copy_(0, order, outputs).view(count, topK, hidden.shape[1]);
        return bmm(tokens.Weights.unsqueeze(1), inPairOrder).squeeze(1);
    }

    /// <summary>
    /// What <c>_grouped_mm</c> computes, one matmul per group with the offsets read on the host: the
    /// GroupedGemm path when it is forced without the native kernel (the CPU tests of its sorting and
    /// combining). Rows past the last offset are NaN: the CUDA kernel leaves them as it found them.
    /// </summary>
    private static Tensor ReferenceGroupedMm(Tensor rows, Tensor weights, Tensor offsets)
    {
        var ends = offsets.cpu().data<int>().ToArray();
        using var undefined = double.NaN.ToScalar();
        var output = full([rows.shape[0], weights.shape[2]], undefined, rows.dtype, rows.device);
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
        long count = hidden.shape[0], size = hidden.shape[1], inter = _inter, experts = _gateUp.shape[0];
        var gateUp = nn.functional.linear(hidden, GateUpStack().view(experts * 2 * inter, size)).view(count, experts, 2 * inter);
        var activated = nn.functional.silu(gateUp.narrow(2, 0, inter)) * gateUp.narrow(2, inter, inter);
        var outputs = bmm(activated.transpose(0, 1), DownStack().transpose(1, 2));
        // scatter_add: a token that names one expert in two slots gets both weights, as in the sum.
        var routing = zeros([count, experts], tokens.Weights.dtype, hidden.device).scatter_add_(1, tokens.Slots, tokens.Weights);
        // Experts a token did not pick still ran on it; an overflow there (inf) times a zero weight
        // would be NaN in the sum, so their outputs are zeroed first rather than only weighted by 0.
        outputs.masked_fill_(routing.eq(HeldScalars.ZeroReal).t().unsqueeze(-1), HeldScalars.ZeroReal);
        return bmm(routing.unsqueeze(1), outputs.transpose(0, 1)).squeeze(1);
    }

    /// <summary>
    /// Each active expert runs once on all its tokens; weighted outputs summed back per token with
    /// one <c>index_add</c>. The pairs are sorted by slot on the device, then the counts read back
    /// (the one synchronisation). Pairs of the sentinel slot sort last and are not counted, so they are skipped.
    /// </summary>
    private Tensor Sorted(RoutedTokens tokens)
    {
        var (_, order) = tokens.Slots.reshape(-1).sort(0, false);
        var counts = tokens.PairsPerSlot.cpu().data<long>().ToArray();
        var output = zeros_like(tokens.Hidden);
        var pairs = counts.Sum();
        if (pairs == 0) return output;
        order = order.narrow(0, 0, pairs);
        using var topK = tokens.Slots.shape[1].ToScalar(); // alive until div has run (Modeling.HeldScalars says why)
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
        return output.index_add_(0, tokenOfPair, cat(outputs, 0).mul_(weights), HeldScalars.One);
    }

    /// <summary>One expert's SwiGLU on <c>[n, hidden]</c> rows: <c>down(silu(gate(x)) · up(x))</c>.</summary>
    private Tensor Expert(int slot, Tensor input)
    {
        var (gateUpWeight, downWeight) = _int4 is not null ? _int4.Dequantize(slot, input.dtype)
            : _fp8 is not null ? (_fp8.GateUp(_gateUp, _inter, slot), _fp8.Down(_down, slot))
            : (_gateUp[slot], _down[slot]);
        var gateUp = nn.functional.linear(input, gateUpWeight);
        var activated = nn.functional.silu(gateUp.narrow(-1, 0, _inter)) * gateUp.narrow(-1, _inter, _inter);
        return nn.functional.linear(activated, downWeight);
    }

    /// <summary>Every held expert's gate/up rows <c>[held, 2·inter, hidden]</c> in the compute dtype (dequantised per use when FP8).</summary>
    private Tensor GateUpStack() => _ahead is { } ahead ? ahead.GateUp.Take() : _fp8?.GateUp(_gateUp, _inter) ?? _gateUp;

    /// <summary>Every held expert's down rows <c>[held, hidden, inter]</c> in the compute dtype.</summary>
    private Tensor DownStack() => _ahead is { } ahead ? ahead.Down.Take() : _fp8?.Down(_down) ?? _down;

    /// <summary>
    /// FP8-resident stacks' block scales, and their dequantisation into temporaries of the compute
    /// dtype: one expert (Sorted) or the layer's whole stack (Dense, GroupedGemm) per use, so the
    /// residency stays one byte a weight and the scratch is one layer's at most. Gate and up rows are
    /// dequantised apart: each has its own grid, whose last block is partial when inter is not a multiple.
    /// With <c>Kernel</c> (CUDA, bf16) the helper dequantises a whole stack in one kernel.
    /// </summary>
    private sealed record Fp8Stacks(Fp8BlockQuantization Blocks, Tensor GateUpScaleInv, Tensor DownScaleInv, ScalarType DType, NativeHelper? Kernel)
    {
        public Tensor GateUp(Tensor bytes, long inter, int? slot = null)
        {
            var (weights, scales) = slot is { } s ? (bytes[s], GateUpScaleInv[s]) : (bytes, GateUpScaleInv);
            if (Kernel is not null) return Kernel.Fp8Dequantize(weights, scales, splitRows: inter);
            var gateBlocks = scales.shape[^2] / 2;
            var gate = Fp8BlockWeights.DequantizeTo(weights.narrow(-2, 0, inter), scales.narrow(-2, 0, gateBlocks), Blocks, DType);
            var up = Fp8BlockWeights.DequantizeTo(weights.narrow(-2, inter, inter), scales.narrow(-2, gateBlocks, gateBlocks), Blocks, DType);
            return cat([gate, up], -2);
        }

        public Tensor Down(Tensor bytes, int? slot = null) => Kernel is not null
            ? (slot is { } k ? Kernel.Fp8Dequantize(bytes[k], DownScaleInv[k]) : Kernel.Fp8Dequantize(bytes, DownScaleInv))
            : slot is { } s
            ? Fp8BlockWeights.DequantizeTo(bytes[s], DownScaleInv[s], Blocks, DType)
            : Fp8BlockWeights.DequantizeTo(bytes, DownScaleInv, Blocks, DType);
    }
}
