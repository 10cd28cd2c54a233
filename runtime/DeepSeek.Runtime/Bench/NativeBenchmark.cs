using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Native;
using DeepSeek.Model.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Runtime.Bench;

/// <summary>A captured launch-bound chain against the same chain run eagerly, one row per batch-size bucket.</summary>
public sealed record GraphResult(int Batch, int Layers, double EagerMs, double ReplayMs, double Speedup, bool IdenticalOnCapturedInput, bool IdenticalOnNewInput);

/// <summary>
/// One MoE layer's routed-expert GEMMs (gate/up, SwiGLU, down) for <c>Tokens</c> tokens, three ways in bf16,
/// and the same experts as int4 through the fused kernel (weighted sum per token included).
/// <c>…GraphMs</c>: the same work replayed from a CUDA graph, so without launch overhead (what a captured
/// decode step pays). <c>Int4FusedRelativeError</c>: against the per-expert loop over the dequantised weights
/// in float32; <c>Int4DequantisedBf16RelativeError</c>: that loop in bf16 against the same, the rounding a bf16
/// path carries anyway.
/// </summary>
public sealed record GroupedMmResult(int Tokens, int ExpertsTouched, int BusiestExpertRows, double GroupedMs, double PaddedBmmMs, double PerExpertLoopMs,
    double GroupedGraphMs, double PaddedBmmGraphMs, double GroupedVsLoopRelativeError, double GroupedWeightGbs,
    double Int4FusedMs, double Int4FusedGraphMs, double Int4FusedRelativeError, double Int4DequantisedBf16RelativeError);

/// <summary>An int4 weight-only matmul against the bf16 one it replaces, called eagerly and replayed from a graph (<c>…GraphUs</c>, GB/s from those).</summary>
public sealed record Int4Result(string Weight, long OutFeatures, long InFeatures, int Rows, double Bf16Us, double Int4Us, double Bf16GraphUs, double Int4GraphUs,
    double KernelRelativeError, double QuantizationRelativeError, double Bf16WeightGbs, double Int4WeightGbs);

/// <summary>
/// An FP8-resident weight (128×128 blocks) through the helper's kernels against bf16 holding the same
/// values (the weight dequantised to bf16), replayed from graphs: a projection <c>x[M, K] · Wᵀ</c>
/// (<c>Fp8Linear</c>), or a layer's routed experts for <c>Rows</c> tokens (<c>Fp8Moe</c> against the bf16
/// grouped GEMM). Errors against float32 products of the dequantised weights: the kernel's, and bf16's own.
/// </summary>
public sealed record Fp8Result(string Weight, long OutFeatures, long InFeatures, int Rows, double Bf16GraphUs, double Fp8GraphUs,
    double KernelRelativeError, double Bf16RelativeError, double Bf16WeightGbs, double Fp8WeightGbs);

/// <summary>
/// An NCCL group's bring-up and collectives, checked value by value; <c>LargeAllToAllMs</c>: a 64 MiB bf16
/// all-to-all; <c>Broadcast</c> and <c>BoundedWait</c>: the expert transport's header broadcast and a
/// host-blocking all-to-all; <c>CapturedAllToAll</c>: an equal-split all-to-all captured in a CUDA graph and
/// replayed twice with new inputs, an eager all-gather between (a data-parallel decode step's fixed-capacity
/// exchange, and the agreement before the next); <c>LostRankFails</c> (two ranks or more, run last): a
/// broadcast that the other ranks never join fails on rank 0 within its wait, without ending the process,
/// and the group then refuses further calls (null with one rank, or when the capture failed).
/// </summary>
public sealed record NcclResult(int Rank, int WorldSize, long Generation, double InitMs, bool AllToAllEqualSplits, bool AllToAllUnevenSplits, bool AllGather,
    bool Broadcast, bool BoundedWait, bool CapturedAllToAll, bool? LostRankFails, double LargeAllToAllMs);

/// <summary>
/// <c>bench native</c>: proves each function of the native helper from TorchSharp on a CUDA device and
/// times it at DeepSeek-V2-Lite's shapes. Host timing around <c>cuda.synchronize</c>, median of five runs
/// of many calls after a warm-up; weights rotate through copies larger than L2 where one copy would fit.
/// </summary>
public sealed class NativeBenchmark(NativeHelper helper, Device device, Action<string> log)
{
    // DeepSeek-V2-Lite's routed-expert shape.
    private const int Experts = 64;
    private const int Hidden = 2048;
    private const int MoeIntermediate = 1408;
    private const int TopK = 6;
    // Held for the process, as the model's are (HeldScalars says why).
    private static readonly Scalar TopKScalar = TopK.ToScalar();
    private static readonly Scalar WeightScale = 0.02f.ToScalar();
    private const long RotationBytes = 512L << 20;

    /// <summary>Eager against replayed chains of <paramref name="layers"/> × (matmul by a 2048² bf16 weight, tanh), the buckets sharing one pool.</summary>
    public IReadOnlyList<GraphResult> Graphs(IReadOnlyList<int> batches, int layers = 60)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Seed(11);
        var weights = Enumerable.Range(0, layers).Select(_ => (randn([Hidden, Hidden], ScalarType.BFloat16, device).mul(WeightScale))).ToArray();
        Tensor Chain(Tensor x)
        {
            foreach (var w in weights) x = x.matmul(w).tanh();
            return x;
        }

        var buckets = new DecodeGraphBuckets(batches);
        using var pool = helper.CreateGraphPool();
        var captured = new Dictionary<int, (CudaGraph Graph, Tensor Input, Tensor Output)>();
        try
        {
            foreach (var batch in buckets.CaptureOrder)
            {
                var input = randn([batch, Hidden], ScalarType.BFloat16, device);
                for (var i = 0; i < 3; i++) Chain(input).Dispose(); // warm-up: cuBLAS handles and workspaces exist before the capture
                Tensor? output = null;
                var graph = helper.CaptureGraph(pool, device, () =>
                {
                    using var inner = NewDisposeScope();
                    output = Chain(input).MoveToOuterDisposeScope();
                });
                captured[batch] = (graph, input, output!);
                log($"graph: captured batch {batch} ({layers} layers)");
            }

            var rows = new List<GraphResult>();
            foreach (var batch in buckets.Sizes)
            {
                var (graph, input, output) = captured[batch];
                // Pools are shared: check each bucket right after its own replay, as a decode step would read it.
                graph.Replay();
                using var eagerCaptured = Chain(input);
                var identicalCaptured = output.eq(eagerCaptured).all().item<bool>();
                input.copy_(randn([batch, Hidden], ScalarType.BFloat16, device));
                graph.Replay();
                using var eagerNew = Chain(input);
                var identicalNew = output.eq(eagerNew).all().item<bool>();

                var eagerMs = MedianMs(() =>
                {
                    using var s = NewDisposeScope();
                    Chain(input);
                }, 50);
                var replayMs = MedianMs(graph.Replay, 200);
                rows.Add(new GraphResult(batch, layers, eagerMs, replayMs, eagerMs / replayMs, identicalCaptured, identicalNew));
            }
            return rows;
        }
        finally
        {
            foreach (var (graph, _, _) in captured.Values) graph.Dispose();
        }
    }

    /// <summary>Grouped GEMM against padded bmm and a per-expert loop, for uniformly routed tokens (top-6 of 64).</summary>
    public IReadOnlyList<GroupedMmResult> GroupedMm(IReadOnlyList<int> tokenCounts)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Seed(21);
        var gateUp = randn([Experts, 2 * MoeIntermediate, Hidden], ScalarType.BFloat16, device).mul(WeightScale);
        var down = randn([Experts, Hidden, MoeIntermediate], ScalarType.BFloat16, device).mul(WeightScale);
        var gateUpT = gateUp.transpose(1, 2); // [E, hidden, 2·inter]: a view, as _grouped_mm takes nn.Linear-layout weights
        var downT = down.transpose(1, 2);
        using var int4 = Int4Experts.Quantize(gateUp, down, WeightQuantization.DefaultGroupSize, helper);

        static Tensor SwiGlu(Tensor h) => nn.functional.silu(h.narrow(-1, 0, MoeIntermediate)) * h.narrow(-1, MoeIntermediate, MoeIntermediate);

        var rows = new List<GroupedMmResult>();
        foreach (var tokens in tokenCounts)
        {
            using var perSize = NewDisposeScope();
            var picks = rand([tokens, Experts], device: device).topk(TopK).indexes;
            var routed = picks.flatten();
            var pickWeights = rand([tokens, TopK], device: device).softmax(-1);
            var (expertOfRow, order) = routed.sort(stable: true);
            var counts = routed.bincount(null, Experts);
            var offsets = counts.cumsum(0).to(ScalarType.Int32);
            var x = randn([tokens, Hidden], ScalarType.BFloat16, device);
            var input = x.index_select(0, order.div(TopKScalar, rounding_mode: RoundingMode.trunc));
            var countsHost = counts.cpu().data<long>().ToArray();
            var busiest = (int)countsHost.Max();
            var starts = (counts.cumsum(0) - counts).index_select(0, expertOfRow);
            var slot = DeepSeek.Model.Modeling.HeldScalars.Range(tokens * TopK, device) - starts;

            Tensor Grouped()
            {
                var h = helper.GroupedMm(input, gateUpT, offsets);
                return helper.GroupedMm(SwiGlu(h), downT, offsets);
            }
            Tensor Padded()
            {
                var padded = zeros([Experts, busiest, Hidden], ScalarType.BFloat16, device);
                padded.index_put_(input, expertOfRow, slot);
                var h = padded.bmm(gateUpT);
                return SwiGlu(h).bmm(downT).index(expertOfRow, slot);
            }
            Tensor Loop()
            {
                var parts = new List<Tensor>();
                long start = 0;
                for (var e = 0; e < Experts; e++)
                {
                    if (countsHost[e] == 0) continue;
                    var h = input.narrow(0, start, countsHost[e]).matmul(gateUpT[e]);
                    parts.Add(SwiGlu(h).matmul(downT[e]));
                    start += countsHost[e];
                }
                return cat(parts, 0);
            }

            Tensor Int4Fused() => int4.ComputeFused(new RoutedTokens(0, x, picks, pickWeights, counts));
            // The fused kernel's references: the loop over each expert's dequantised weights, weighted
            // per token, once in float32 (the truth both are measured against) and once in bf16 (the
            // rounding the dequantise-and-multiply path itself carries, for comparison).
            Tensor Int4Reference(ScalarType dtype)
            {
                var rowsIn = input.to(dtype);
                var perPair = empty([tokens * TopK, Hidden], dtype, device);
                long start = 0;
                for (var e = 0; e < Experts; e++)
                {
                    if (countsHost[e] == 0) continue;
                    var (gateUpE, downE) = int4.Dequantize(e, dtype);
                    var h = rowsIn.narrow(0, start, countsHost[e]).matmul(gateUpE.t());
                    perPair.narrow(0, start, countsHost[e]).copy_(SwiGlu(h).matmul(downE.t()));
                    start += countsHost[e];
                }
                var inPairOrder = empty_like(perPair).index_copy_(0, order, perPair).view(tokens, TopK, Hidden).to(ScalarType.Float32);
                return (inPairOrder * pickWeights.unsqueeze(-1)).sum(1);
            }

            var grouped = Grouped();
            var error = RelativeError(grouped, Loop());
            var paddedError = RelativeError(Padded(), Loop());
            if (paddedError > 1e-2) log($"grouped_mm: the padded reference itself is off by {paddedError:E2} at {tokens} tokens");
            var groupedMs = MedianMs(() => { using var s = NewDisposeScope(); Grouped(); }, 20);
            var paddedMs = MedianMs(() => { using var s = NewDisposeScope(); Padded(); }, 20);
            var loopMs = MedianMs(() => { using var s = NewDisposeScope(); Loop(); }, 10);
            var groupedGraphMs = GraphMs(_ => Grouped(), 10);
            var paddedGraphMs = GraphMs(_ => Padded(), 10);
            var truth = Int4Reference(ScalarType.Float32);
            var int4Error = RelativeError(Int4Fused(), truth);
            var dequantisedBf16Error = RelativeError(Int4Reference(ScalarType.BFloat16), truth);
            var int4Ms = MedianMs(() => { using var s = NewDisposeScope(); Int4Fused(); }, 20);
            var int4GraphMs = GraphMs(_ => Int4Fused(), 10);
            var touched = countsHost.Count(c => c > 0);
            var weightBytes = touched * 3.0 * MoeIntermediate * Hidden * 2;
            rows.Add(new GroupedMmResult(tokens, touched, busiest, groupedMs, paddedMs, loopMs, groupedGraphMs, paddedGraphMs, error, weightBytes / (groupedGraphMs * 1e6),
                int4Ms, int4GraphMs, int4Error, dequantisedBf16Error));
            log($"grouped_mm: {tokens} tokens done");
        }
        return rows;
    }

    /// <summary>int4 (group 128) against bf16 for V2-Lite's expert, dense-MLP and LM-head weights at <paramref name="rowCounts"/> rows.</summary>
    public IReadOnlyList<Int4Result> Int4(IReadOnlyList<int> rowCounts, int groupSize = 128, int innerKTiles = 8)
    {
        using var noGrad = no_grad();
        var shapes = new (string Name, long N, long K)[]
        {
            ("expert gate+up", 2 * MoeIntermediate, Hidden),
            ("expert down", Hidden, MoeIntermediate),
            ("dense gate+up", 2 * 10944, Hidden),
            ("lm_head", 102400, Hidden),
        };
        Seed(31);
        var rows = new List<Int4Result>();
        foreach (var (name, n, k) in shapes)
        {
            using var scope = NewDisposeScope();
            var weight = randn([n, k], ScalarType.BFloat16, device).mul(WeightScale);
            using var quantized = Int4GroupQuantization.Quantize(weight, groupSize);
            var packed = helper.PackInt4(quantized.Packed, innerKTiles);
            var dequantized = quantized.Dequantize();
            var bf16Bytes = n * k * 2.0;
            var int4Bytes = n * k / 2.0 + quantized.ScalesAndZeros.NumberOfElements * 2.0;
            var copies = (int)Math.Clamp(RotationBytes / (long)bf16Bytes, 1, 48);
            var weightCopies = Enumerable.Range(0, copies).Select(_ => weight.clone()).ToArray();
            var packedCopies = Enumerable.Range(0, copies).Select(_ => packed.clone()).ToArray();
            foreach (var m in rowCounts)
            {
                var x = randn([m, k], ScalarType.BFloat16, device);
                var int4 = helper.Int4Mm(x, packed, groupSize, quantized.ScalesAndZeros).to(ScalarType.Float32);
                var kernelError = RelativeError(int4, x.to(ScalarType.Float32).matmul(dequantized.t()));
                var quantizationError = RelativeError(int4, x.to(ScalarType.Float32).matmul(weight.to(ScalarType.Float32).t()));
                var i = 0;
                var bf16Ms = MedianMs(() => { using var s = NewDisposeScope(); nn.functional.linear(x, weightCopies[i++ % copies]); }, 100);
                var j = 0;
                var int4Ms = MedianMs(() => { using var s = NewDisposeScope(); helper.Int4Mm(x, packedCopies[j++ % copies], groupSize, quantized.ScalesAndZeros); }, 100);
                var repeats = Math.Max(copies, 8);
                var bf16GraphMs = GraphMs(r => nn.functional.linear(x, weightCopies[r % copies]), repeats);
                var int4GraphMs = GraphMs(r => helper.Int4Mm(x, packedCopies[r % copies], groupSize, quantized.ScalesAndZeros), repeats);
                rows.Add(new Int4Result(name, n, k, m, bf16Ms * 1e3, int4Ms * 1e3, bf16GraphMs * 1e3, int4GraphMs * 1e3, kernelError, quantizationError,
                    bf16Bytes / (bf16GraphMs * 1e6), int4Bytes / (int4GraphMs * 1e6)));
            }
            log($"int4: {name} done");
        }
        return rows;
    }

    /// <summary>
    /// FP8 (128×128 blocks) against bf16 holding the same values, for V2-Lite's projection shapes at
    /// <paramref name="rowCounts"/> rows and its routed experts at as many tokens. Both errors are
    /// against float32 products of the FP8 weights' exact values (e4m3 × scale), which the bf16 copy
    /// holds rounded.
    /// </summary>
    public IReadOnlyList<Fp8Result> Fp8(IReadOnlyList<int> rowCounts)
    {
        using var noGrad = no_grad();
        var blocks = Fp8Residency.Published;
        var shapes = new (string Name, long N, long K)[]
        {
            ("q_proj", 16 * 192, Hidden),
            ("o_proj", Hidden, 16 * 128),
            ("shared experts gate+up", 2 * 2 * MoeIntermediate, Hidden),
            ("dense down", Hidden, 10944),
        };
        Seed(41);
        var rows = new List<Fp8Result>();
        foreach (var (name, n, k) in shapes)
        {
            using var scope = NewDisposeScope();
            var (bytes, scaleInv) = Fp8BlockWeights.Quantize(randn([n, k], ScalarType.BFloat16, device).mul(WeightScale), blocks);
            var weight = Fp8BlockWeights.DequantizeTo(bytes, scaleInv, blocks, ScalarType.BFloat16);
            var exact = Fp8BlockWeights.DequantizeTo(bytes, scaleInv, blocks, ScalarType.Float32);
            var copies = (int)Math.Clamp(RotationBytes / (n * k * 2), 1, 48);
            var weightCopies = Enumerable.Range(0, copies).Select(_ => weight.clone()).ToArray();
            var byteCopies = Enumerable.Range(0, copies).Select(_ => bytes.clone()).ToArray();
            foreach (var m in rowCounts)
            {
                var x = randn([m, k], ScalarType.BFloat16, device);
                var truth = x.to(ScalarType.Float32).matmul(exact.t());
                var kernelError = RelativeError(helper.Fp8Linear(x, bytes, scaleInv), truth);
                var bf16Error = RelativeError(nn.functional.linear(x, weight), truth);
                var repeats = Math.Max(copies, 8);
                var bf16GraphMs = GraphMs(r => nn.functional.linear(x, weightCopies[r % copies]), repeats);
                var fp8GraphMs = GraphMs(r => helper.Fp8Linear(x, byteCopies[r % copies], scaleInv), repeats);
                rows.Add(new Fp8Result(name, n, k, m, bf16GraphMs * 1e3, fp8GraphMs * 1e3, kernelError, bf16Error,
                    n * k * 2.0 / (bf16GraphMs * 1e6), ((n * k * 1.0) + (scaleInv.numel() * 4.0)) / (fp8GraphMs * 1e6)));
            }
            log($"fp8: {name} done");
        }
        rows.AddRange(Fp8Experts(rowCounts, blocks));
        return rows;
    }

    /// <summary>One MoE layer's routed experts (64, top-6) held FP8: the fused kernels against the bf16 grouped GEMM of the dequantised stacks.</summary>
    private List<Fp8Result> Fp8Experts(IReadOnlyList<int> tokenCounts, Fp8BlockQuantization blocks)
    {
        using var scope = NewDisposeScope();
        var gateUpBytes = new List<Tensor>();
        var gateUpScales = new List<Tensor>();
        var downBytes = new List<Tensor>();
        var downScales = new List<Tensor>();
        var gateUpExact = new List<Tensor>();
        var downExact = new List<Tensor>();
        for (var e = 0; e < Experts; e++)
        {
            var (gate, gateScale) = Fp8BlockWeights.Quantize(randn([MoeIntermediate, Hidden], ScalarType.BFloat16, device).mul(WeightScale), blocks);
            var (up, upScale) = Fp8BlockWeights.Quantize(randn([MoeIntermediate, Hidden], ScalarType.BFloat16, device).mul(WeightScale), blocks);
            var (down, downScale) = Fp8BlockWeights.Quantize(randn([Hidden, MoeIntermediate], ScalarType.BFloat16, device).mul(WeightScale), blocks);
            gateUpBytes.Add(cat([gate, up], 0));
            gateUpScales.Add(cat([gateScale, upScale], 0));
            downBytes.Add(down);
            downScales.Add(downScale);
            gateUpExact.Add(cat([Fp8BlockWeights.DequantizeTo(gate, gateScale, blocks, ScalarType.Float32), Fp8BlockWeights.DequantizeTo(up, upScale, blocks, ScalarType.Float32)], 0));
            downExact.Add(Fp8BlockWeights.DequantizeTo(down, downScale, blocks, ScalarType.Float32));
        }
        var (gateUpExactT, downExactT) = (stack(gateUpExact).transpose(1, 2), stack(downExact).transpose(1, 2));
        var (gateUp, gateUpScaleInv, downStack, downScaleInv) = (stack(gateUpBytes), stack(gateUpScales), stack(downBytes), stack(downScales));
        var gateUpBf16 = helper.Fp8Dequantize(gateUp, gateUpScaleInv, MoeIntermediate);
        var downBf16 = helper.Fp8Dequantize(downStack, downScaleInv);
        var dequantisedError = RelativeError(downBf16[3], Fp8BlockWeights.DequantizeTo(downStack[3], downScaleInv[3], blocks, ScalarType.BFloat16));
        if (dequantisedError != 0) log($"fp8: the helper's dequantisation differs from the reference by {dequantisedError:E2}");
        var (gateUpT, downT) = (gateUpBf16.transpose(1, 2), downBf16.transpose(1, 2));
        static Tensor SwiGlu(Tensor h) => nn.functional.silu(h.narrow(-1, 0, MoeIntermediate)) * h.narrow(-1, MoeIntermediate, MoeIntermediate);

        var rows = new List<Fp8Result>();
        foreach (var tokens in tokenCounts)
        {
            using var perSize = NewDisposeScope();
            var picks = rand([tokens, Experts], device: device).topk(TopK).indexes;
            var pickWeights = rand([tokens, TopK], device: device).softmax(-1);
            var x = randn([tokens, Hidden], ScalarType.BFloat16, device);
            var (_, order) = picks.flatten().sort(stable: true);
            var offsets = picks.flatten().bincount(null, Experts).cumsum(0).to(ScalarType.Int32);
            Tensor Grouped(Tensor input, Tensor gateUpWeights, Tensor downWeights)
            {
                var sorted = input.index_select(0, order.div(TopKScalar, rounding_mode: RoundingMode.trunc));
                var perPair = helper.GroupedMm(SwiGlu(helper.GroupedMm(sorted, gateUpWeights, offsets)), downWeights, offsets);
                var inPairOrder = empty_like(perPair).index_copy_(0, order, perPair).view(tokens, TopK, Hidden);
                return bmm(pickWeights.to(input.dtype).unsqueeze(1), inPairOrder).squeeze(1);
            }
            // Truth: the same routing through the FP8 weights' exact values in float32.
            var truth = Grouped(x.to(ScalarType.Float32), gateUpExactT, downExactT);
            var kernelError = RelativeError(helper.Fp8Moe(x, picks, pickWeights, gateUp, gateUpScaleInv, downStack, downScaleInv), truth);
            var bf16Error = RelativeError(Grouped(x, gateUpT, downT), truth);
            var bf16GraphMs = GraphMs(_ => Grouped(x, gateUpT, downT), 10);
            var fp8GraphMs = GraphMs(_ => helper.Fp8Moe(x, picks, pickWeights, gateUp, gateUpScaleInv, downStack, downScaleInv), 10);
            var touched = picks.flatten().unique().output.numel();
            var weightValues = touched * 3.0 * MoeIntermediate * Hidden;
            rows.Add(new Fp8Result($"routed experts ({Experts}, top-{TopK})", 3 * MoeIntermediate, Hidden, tokens, bf16GraphMs * 1e3, fp8GraphMs * 1e3,
                kernelError, bf16Error, weightValues * 2 / (bf16GraphMs * 1e6), weightValues / (fp8GraphMs * 1e6)));
        }
        log("fp8: routed experts done");
        return rows;
    }

    /// <summary>
    /// Brings up the NCCL group and checks all-to-all (equal and uneven splits) and all-gather value by
    /// value: rank r sends rank j rows filled with 1000·r + j. Every rank of the group runs this.
    /// </summary>
    public NcclResult Nccl(string storeHost, int storePort, int rank, int worldSize)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        using var group = helper.CreateProcessGroup(storeHost, storePort, rank, worldSize, device, TimeSpan.FromMinutes(2));
        // NCCL creates its communicator at the first collective: count that into the bring-up.
        var warm = ones([worldSize], ScalarType.Float32, device);
        group.AllToAll(empty_like(warm), warm);
        cuda.synchronize(device);
        var initMs = clock.Elapsed.TotalMilliseconds;

        const int width = 256;
        Tensor Filled(long rowsEach, Func<int, float> value) =>
            cat(Enumerable.Range(0, worldSize).Select(peer => Full([rowsEach, width], value(peer))).ToList(), 0);

        var sent = Filled(4, peer => (1000 * rank) + peer);
        var received = Full([4L * worldSize, width], float.NaN);
        group.AllToAll(received, sent);
        var equalOk = received.eq(Filled(4, peer => (1000 * peer) + rank)).all().item<bool>();

        // Uneven: rank r sends j + 1 rows to rank j, so every rank receives rank + 1 rows from each peer.
        var inputSplits = Enumerable.Range(0, worldSize).Select(peer => (long)peer + 1).ToArray();
        var outputSplits = Enumerable.Range(0, worldSize).Select(_ => (long)rank + 1).ToArray();
        var unevenSent = cat(Enumerable.Range(0, worldSize).Select(peer => Full([peer + 1L, width], (1000f * rank) + peer)).ToList(), 0);
        var unevenReceived = Full([(rank + 1L) * worldSize, width], float.NaN);
        group.AllToAll(unevenReceived, unevenSent, outputSplits, inputSplits);
        var unevenOk = unevenReceived.eq(Filled(rank + 1, peer => (1000 * peer) + rank)).all().item<bool>();

        var mine = Full([3, width], rank);
        var gathered = Full([3L * worldSize, width], float.NaN);
        group.AllGather(gathered, mine);
        var gatherOk = gathered.eq(Filled(3, peer => peer)).all().item<bool>();

        // The expert transport's header: rank 0's values reach every rank.
        var header = rank == 0 ? tensor(new long[] { 2, 5, 1, 6, 0, 7 }, device: device) : zeros([6], ScalarType.Int64, device);
        group.Broadcast(header, 0);
        var broadcastOk = header.cpu().data<long>().ToArray().SequenceEqual([2L, 5, 1, 6, 0, 7]);

        // Host-blocking all-to-all, as the transport's combine: values are there when it returns.
        var boundedReceived = Full([4L * worldSize, width], float.NaN);
        group.AllToAll(boundedReceived, Filled(4, peer => (1000 * rank) + peer), null, null, TimeSpan.FromSeconds(30));
        var boundedOk = boundedReceived.eq(Filled(4, peer => (1000 * peer) + rank)).all().item<bool>();

        var big = randn([32L << 20], ScalarType.BFloat16, device); // 64 MiB
        var bigOut = empty_like(big);
        var allToAllMs = MedianMs(() => group.AllToAll(bigOut, big), 20);
        var capturedOk = CapturedAllToAll();
        // A capture that failed aborted the group (the helper does on any failed collective).
        bool? lostRankFails = worldSize > 1 && capturedOk ? LostRankFails(group, rank) : null;
        return new NcclResult(rank, worldSize, group.Generation, initMs, equalOk, unevenOk, gatherOk, broadcastOk, boundedOk, capturedOk, lostRankFails, allToAllMs);

        bool CapturedAllToAll()
        {
            var input = Filled(4, peer => (1000 * rank) + peer);
            var output = Full([4L * worldSize, width], float.NaN);
            using var pool = helper.CreateGraphPool();
            CudaGraph graph;
            try
            {
                graph = helper.CaptureGraph(pool, device, () => group.AllToAll(output, input));
            }
            catch (Exception e) when (e is NativeHelperException or ExternalException)
            {
                log($"nccl: capturing an all-to-all failed: {e.Message}");
                return false;
            }
            using (graph)
            {
                for (var round = 1; round <= 2; round++)
                {
                    input.copy_(Filled(4, peer => (1000 * rank) + peer + (100 * round)));
                    graph.Replay();
                    var agreement = Full([worldSize], float.NaN);
                    group.AllGather(agreement, Full([1], rank), TimeSpan.FromSeconds(30));
                    if (!output.eq(Filled(4, peer => (1000 * peer) + rank + (100 * round))).all().item<bool>() || !agreement.eq(DeepSeek.Model.Modeling.HeldScalars.Range(worldSize, device).to(ScalarType.Float32)).all().item<bool>())
                    {
                        log($"nccl: replay {round} of the captured all-to-all gave other values");
                        return false;
                    }
                }
            }
            return true;
        }
    }

    /// <summary>A float32 tensor of <paramref name="shape"/> filled with <paramref name="value"/>, its Scalar held through the call (HeldScalars says why).</summary>
    private Tensor Full(long[] shape, float value)
    {
        using var fill = value.ToScalar();
        return full(shape, fill, ScalarType.Float32, device);
    }

    /// <summary>
    /// Rank 0 broadcasts with a 3 s wait that the other ranks never join (they stand for a lost rank,
    /// then abort their side): it must fail in time, and every later call on the group must fail too.
    /// </summary>
    private bool LostRankFails(NcclProcessGroup group, int rank)
    {
        var wait = TimeSpan.FromSeconds(3);
        if (rank != 0)
        {
            Thread.Sleep(wait * 3);
            group.Abort();
            return true;
        }
        var clock = Stopwatch.StartNew();
        try
        {
            group.Broadcast(zeros([8], ScalarType.Int64, device), 0, wait);
            log("nccl: a broadcast no other rank joined completed");
            return false;
        }
        catch (NativeHelperException e)
        {
            log($"nccl: the unjoined broadcast failed after {clock.Elapsed.TotalSeconds:0.0} s: {e.Message}");
        }
        try
        {
            group.Broadcast(zeros([8], ScalarType.Int64, device), 0);
            log("nccl: the aborted group accepted another collective");
            return false;
        }
        catch (NativeHelperException)
        {
            return clock.Elapsed < wait * 3;
        }
    }

    /// <summary>A free loopback port for a one-process group's store.</summary>
    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    // The CUDA generators, through the global seed: a Generator object made here would be a CPU one.
    private static void Seed(long seed)
    {
        manual_seed(seed);
        cuda.manual_seed_all(seed);
    }

    /// <summary>
    /// Per call of <paramref name="work"/> (given its repeat index), replayed from one graph of
    /// <paramref name="repeats"/> calls: the kernels' time without launch overhead. NaN (logged) when the
    /// work cannot be captured.
    /// </summary>
    private double GraphMs(Func<int, Tensor> work, int repeats)
    {
        try
        {
            using var graph = helper.CaptureGraph(null, device, () =>
            {
                for (var r = 0; r < repeats; r++)
                {
                    using var scope = NewDisposeScope();
                    work(r);
                }
            });
            return MedianMs(graph.Replay, 10) / repeats;
        }
        catch (NativeHelperException e)
        {
            log($"graph capture failed: {e.Message}");
            return double.NaN;
        }
    }

    private double MedianMs(Action operation, int iterations)
    {
        for (var i = 0; i < 3; i++) operation();
        cuda.synchronize(device);
        var samples = new double[5];
        for (var r = 0; r < samples.Length; r++)
        {
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < iterations; i++) operation();
            cuda.synchronize(device);
            samples[r] = clock.Elapsed.TotalMilliseconds / iterations;
        }
        Array.Sort(samples);
        return samples[samples.Length / 2];
    }

    private static double RelativeError(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        var a = actual.to(ScalarType.Float64);
        var e = expected.to(ScalarType.Float64);
        var error = (a - e).norm().item<double>() / e.norm().item<double>();
        return double.IsNaN(error) ? double.PositiveInfinity : error;
    }
}
