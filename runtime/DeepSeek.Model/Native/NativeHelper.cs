using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace DeepSeek.Model.Native;

/// <summary>
/// The native GPU helper (<c>libdeepseek_native.so</c>, built from <c>runtime/native</c> by
/// <c>scripts/build-native.sh</c> against the PyTorch LibTorch the runtime runs on): CUDA graphs, the
/// grouped expert GEMM, varlen attention forwards, int4 and FP8 weight kernels and NCCL collectives, which TorchSharp does not expose.
/// Tensors cross as TorchSharp's native handles (<c>at::Tensor*</c>): arguments are borrowed, results
/// are new tensors this process owns. Optional: when the library is absent the caller logs the reason
/// and keeps to the eager TorchSharp paths; the CPU path never needs it.
/// </summary>
public sealed unsafe class NativeHelper
{
    public const string LibraryFileName = "libdeepseek_native.so";

    /// <summary>The C ABI version this binding was written for (<c>DSN_ABI_VERSION</c> in <c>deepseek_native.h</c>).</summary>
    public const int AbiVersion = 7;

    private readonly delegate* unmanaged<IntPtr> _lastError;
    private readonly delegate* unmanaged<IntPtr> _graphPoolCreate;
    private readonly delegate* unmanaged<IntPtr, void> _graphPoolDestroy;
    private readonly delegate* unmanaged<IntPtr, int, IntPtr> _graphCaptureBegin;
    private readonly delegate* unmanaged<IntPtr, int> _graphCaptureEnd;
    private readonly delegate* unmanaged<IntPtr, int> _graphReplay;
    private readonly delegate* unmanaged<IntPtr, void> _graphDestroy;
    private readonly delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr> _groupedMm;
    private readonly delegate* unmanaged<IntPtr, IntPtr, double, IntPtr> _rmsNorm;
    private readonly delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, long, long, int, double, IntPtr> _flashAttentionVarlen;
    private readonly delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, long, long, int, double, IntPtr> _efficientAttentionVarlen;
    private readonly delegate* unmanaged<IntPtr, int, IntPtr> _int4Pack;
    private readonly delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr> _int4Mm;
    private readonly delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, int, IntPtr> _int4Moe;
    private readonly delegate* unmanaged<IntPtr, IntPtr, int, IntPtr> _int4Dequantize;
    private readonly delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr> _fp8Moe;
    private readonly delegate* unmanaged<IntPtr, IntPtr, long, IntPtr> _fp8Dequantize;
    private readonly delegate* unmanaged<IntPtr, IntPtr, long, IntPtr*, IntPtr> _fp8DequantizeAhead;
    private readonly delegate* unmanaged<IntPtr, int> _streamWait;
    private readonly delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr> _fp8Linear;
    private readonly delegate* unmanaged<IntPtr, int, int, int, int, long, long, IntPtr> _processGroupCreate;
    private readonly delegate* unmanaged<IntPtr, long> _processGroupGeneration;
    private readonly delegate* unmanaged<IntPtr, IntPtr, IntPtr, long*, long*, int, long, int> _processGroupAllToAll;
    private readonly delegate* unmanaged<IntPtr, IntPtr, IntPtr, long, int> _processGroupAllGather;
    private readonly delegate* unmanaged<IntPtr, IntPtr, int, long, int> _processGroupBroadcast;
    private readonly delegate* unmanaged<IntPtr, void> _processGroupAbort;
    private readonly delegate* unmanaged<IntPtr, void> _processGroupDestroy;

    private NativeHelper(IntPtr library, string path)
    {
        Path = path;
        _lastError = (delegate* unmanaged<IntPtr>)Export(library, "dsn_last_error");
        _graphPoolCreate = (delegate* unmanaged<IntPtr>)Export(library, "dsn_graph_pool_create");
        _graphPoolDestroy = (delegate* unmanaged<IntPtr, void>)Export(library, "dsn_graph_pool_destroy");
        _graphCaptureBegin = (delegate* unmanaged<IntPtr, int, IntPtr>)Export(library, "dsn_graph_capture_begin");
        _graphCaptureEnd = (delegate* unmanaged<IntPtr, int>)Export(library, "dsn_graph_capture_end");
        _graphReplay = (delegate* unmanaged<IntPtr, int>)Export(library, "dsn_graph_replay");
        _graphDestroy = (delegate* unmanaged<IntPtr, void>)Export(library, "dsn_graph_destroy");
        _groupedMm = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr>)Export(library, "dsn_grouped_mm");
        _rmsNorm = (delegate* unmanaged<IntPtr, IntPtr, double, IntPtr>)Export(library, "dsn_rms_norm");
        _flashAttentionVarlen = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, long, long, int, double, IntPtr>)Export(library, "dsn_flash_attention_varlen");
        _efficientAttentionVarlen = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, long, long, int, double, IntPtr>)Export(library, "dsn_efficient_attention_varlen");
        _int4Pack = (delegate* unmanaged<IntPtr, int, IntPtr>)Export(library, "dsn_int4_pack");
        _int4Mm = (delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr>)Export(library, "dsn_int4_mm");
        _int4Moe = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, int, IntPtr>)Export(library, "dsn_int4_moe");
        _int4Dequantize = (delegate* unmanaged<IntPtr, IntPtr, int, IntPtr>)Export(library, "dsn_int4_dequantize");
        _fp8Moe = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr>)Export(library, "dsn_fp8_moe");
        _fp8Dequantize = (delegate* unmanaged<IntPtr, IntPtr, long, IntPtr>)Export(library, "dsn_fp8_dequantize");
        _fp8DequantizeAhead = (delegate* unmanaged<IntPtr, IntPtr, long, IntPtr*, IntPtr>)Export(library, "dsn_fp8_dequantize_ahead");
        _streamWait = (delegate* unmanaged<IntPtr, int>)Export(library, "dsn_stream_wait");
        _fp8Linear = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr>)Export(library, "dsn_fp8_linear");
        _processGroupCreate = (delegate* unmanaged<IntPtr, int, int, int, int, long, long, IntPtr>)Export(library, "dsn_process_group_create");
        _processGroupGeneration = (delegate* unmanaged<IntPtr, long>)Export(library, "dsn_process_group_generation");
        _processGroupAllToAll = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, long*, long*, int, long, int>)Export(library, "dsn_process_group_all_to_all");
        _processGroupAllGather = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, long, int>)Export(library, "dsn_process_group_all_gather");
        _processGroupBroadcast = (delegate* unmanaged<IntPtr, IntPtr, int, long, int>)Export(library, "dsn_process_group_broadcast");
        _processGroupAbort = (delegate* unmanaged<IntPtr, void>)Export(library, "dsn_process_group_abort");
        _processGroupDestroy = (delegate* unmanaged<IntPtr, void>)Export(library, "dsn_process_group_destroy");
    }

    /// <summary>Where the library was loaded from.</summary>
    public string Path { get; }

    /// <summary>
    /// Loads the helper from <paramref name="directory"/> (default: next to the executable). Returns null
    /// with the reason when it is absent, does not load, or is not this helper (another ABI version, a
    /// missing function); never throws for those. Call it after CUDA is initialised
    /// (<c>TorchRuntime.Resolve("cuda")</c>), so that the helper binds to the LibTorch TorchSharp already
    /// loaded instead of loading a second one.
    /// </summary>
    public static NativeHelper? TryLoad(out string reason, string? directory = null)
    {
        var path = System.IO.Path.Combine(directory ?? AppContext.BaseDirectory, LibraryFileName);
        if (!File.Exists(path))
        {
            reason = $"{LibraryFileName} is not in {System.IO.Path.GetDirectoryName(path)}: CUDA graphs, grouped expert GEMM, int4 and NCCL are off "
                + "(build it on the GPU host with scripts/build-native.sh and place it next to the executable).";
            return null;
        }
        IntPtr library;
        try
        {
            library = NativeLibrary.Load(path);
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            // The loader's message names the cause: a missing LibTorch dependency, or not a library for this machine.
            reason = $"{path} did not load ({e.Message.Trim()}); the native GPU paths are off.";
            return null;
        }
        try
        {
            if (!NativeLibrary.TryGetExport(library, "dsn_abi_version", out var versionExport))
                throw new MissingExportException($"{path} is not the DeepSeek native helper (it exports no dsn_abi_version)");
            var version = ((delegate* unmanaged<int>)versionExport)();
            if (version != AbiVersion)
                throw new MissingExportException($"{path} has ABI version {version}; this runtime needs {AbiVersion} (rebuild it from this runtime's sources)");
            reason = $"loaded {path}";
            return new NativeHelper(library, path);
        }
        catch (MissingExportException e)
        {
            NativeLibrary.Free(library);
            reason = $"{e.Message}; the native GPU paths are off.";
            return null;
        }
    }

    /// <summary>A memory pool that graphs of several batch-size buckets share (<see cref="DecodeGraphBuckets.CaptureOrder"/>).</summary>
    public CudaGraphPool CreateGraphPool() => new(this, Check(_graphPoolCreate(), "graph_pool_create"));

    [ThreadStatic]
    private static bool t_capturing;

    /// <summary>
    /// Whether this thread is inside <see cref="CaptureGraph"/>'s work: what it issues is recorded, not run, so a
    /// failure there is the capture's (the caller stops capturing), not the work's.
    /// </summary>
    public static bool IsCapturing => t_capturing;

    /// <summary>
    /// Captures the CUDA work <paramref name="work"/> issues on this thread into a graph, on
    /// <paramref name="device"/>'s side stream. The work must have static shapes and never read a tensor to
    /// the host; tensors it creates and keeps (its outputs) live in the graph's pool and are rewritten by
    /// every replay. Warm the same work up eagerly first (library handles, workspaces).
    /// </summary>
    public CudaGraph CaptureGraph(CudaGraphPool? pool, Device device, Action work)
    {
        ArgumentNullException.ThrowIfNull(work);
        var handle = Check(_graphCaptureBegin(pool?.Handle ?? IntPtr.Zero, device.index), "graph_capture_begin");
        try
        {
            t_capturing = true;
            work();
        }
        catch
        {
            _graphDestroy(handle);
            throw;
        }
        finally
        {
            t_capturing = false;
        }
        if (_graphCaptureEnd(handle) != 0)
        {
            var message = LastError();
            _graphDestroy(handle);
            throw new NativeHelperException($"graph_capture_end: {message}");
        }
        GC.KeepAlive(pool);
        return new CudaGraph(this, handle);
    }

    /// <summary>
    /// Per-group matrix products in one launch (<c>at::_grouped_mm</c>): <paramref name="rows"/>
    /// <c>[tokens, K]</c> sorted by group, <paramref name="weights"/> <c>[groups, K, N]</c> (a transposed view
    /// of <c>[groups, N, K]</c> storage is fine), <paramref name="offsets"/> int32 <c>[groups]</c>, the
    /// cumulative end row of each group. Returns <c>[tokens, N]</c>. bf16 on Hopper.
    /// </summary>
    public Tensor GroupedMm(Tensor rows, Tensor weights, Tensor offsets)
    {
        var result = _groupedMm(rows.Handle, weights.Handle, offsets.Handle);
        GC.KeepAlive(rows);
        GC.KeepAlive(weights);
        GC.KeepAlive(offsets);
        return Owned(result, "grouped_mm");
    }

    /// <summary>
    /// RMSNorm over the last dimension of <paramref name="input"/> with <paramref name="weight"/>, as
    /// one fused kernel on CUDA (<c>at::rms_norm</c>): float32 inside, the result in the input's dtype.
    /// </summary>
    public Tensor RmsNorm(Tensor input, Tensor weight, double eps)
    {
        var result = _rmsNorm(input.Handle, weight.Handle, eps);
        GC.KeepAlive(input);
        GC.KeepAlive(weight);
        return Owned(result, "rms_norm");
    }

    /// <summary>
    /// FlashAttention-2 over sequences packed without padding (<c>at::_flash_attention_forward</c>, varlen):
    /// <paramref name="query"/> <c>[total_q, H, D]</c>, <paramref name="keys"/> and <paramref name="values"/>
    /// <c>[total_k, H, D]</c> (one D for all three, last dimension contiguous), int32
    /// <paramref name="cumulativeQueries"/> and <paramref name="cumulativeKeys"/> <c>[S+1]</c> on the device,
    /// and the longest sequence of each as host values. Causal is aligned bottom-right: the last query of a
    /// sequence sees every key of it. Scores scaled by <paramref name="scale"/>. Returns <c>[total_q, H, D]</c>;
    /// fp16 or bf16 on CUDA (sm80 or newer).
    /// </summary>
    public Tensor FlashAttentionVarlen(Tensor query, Tensor keys, Tensor values, Tensor cumulativeQueries, Tensor cumulativeKeys,
        long maxQueries, long maxKeys, bool causal, double scale) =>
        Varlen(_flashAttentionVarlen, "flash_attention_varlen", query, keys, values, cumulativeQueries, cumulativeKeys, maxQueries, maxKeys, causal, scale);

    /// <summary>
    /// <see cref="FlashAttentionVarlen"/>'s contract through the memory-efficient (CUTLASS) kernel
    /// (<c>at::_efficient_attention_forward</c>, causal from the bottom right), which lets
    /// <paramref name="values"/>' head dim differ from q·k's: <c>[total_k, H, Dv]</c> → <c>[total_q, H, Dv]</c>.
    /// </summary>
    public Tensor EfficientAttentionVarlen(Tensor query, Tensor keys, Tensor values, Tensor cumulativeQueries, Tensor cumulativeKeys,
        long maxQueries, long maxKeys, bool causal, double scale) =>
        Varlen(_efficientAttentionVarlen, "efficient_attention_varlen", query, keys, values, cumulativeQueries, cumulativeKeys, maxQueries, maxKeys, causal, scale);

    private Tensor Varlen(delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, long, long, int, double, IntPtr> kernel, string name,
        Tensor query, Tensor keys, Tensor values, Tensor cumulativeQueries, Tensor cumulativeKeys, long maxQueries, long maxKeys, bool causal, double scale)
    {
        var result = kernel(query.Handle, keys.Handle, values.Handle, cumulativeQueries.Handle, cumulativeKeys.Handle, maxQueries, maxKeys, causal ? 1 : 0, scale);
        GC.KeepAlive(query);
        GC.KeepAlive(keys);
        GC.KeepAlive(values);
        GC.KeepAlive(cumulativeQueries);
        GC.KeepAlive(cumulativeKeys);
        return Owned(result, name);
    }

    /// <summary>The int4 kernel's tiled layout of <see cref="Int4GroupQuantization.Packed"/> (uint8 <c>[N, K/2]</c>).</summary>
    public Tensor PackInt4(Tensor packedNibbles, int innerKTiles = 8)
    {
        if (innerKTiles is not (2 or 4 or 8)) throw new ArgumentOutOfRangeException(nameof(innerKTiles), innerKTiles, "innerKTiles is 2, 4 or 8.");
        var result = _int4Pack(packedNibbles.Handle, innerKTiles);
        GC.KeepAlive(packedNibbles);
        return Owned(result, "int4_pack");
    }

    /// <summary><c>x · dequant(W)ᵀ</c> for bf16 <paramref name="input"/> <c>[M, K]</c> and a weight packed by <see cref="PackInt4"/>: bf16 <c>[M, N]</c>.</summary>
    public Tensor Int4Mm(Tensor input, Tensor packedWeight, int groupSize, Tensor scalesAndZeros)
    {
        var result = _int4Mm(input.Handle, packedWeight.Handle, groupSize, scalesAndZeros.Handle);
        GC.KeepAlive(input);
        GC.KeepAlive(packedWeight);
        GC.KeepAlive(scalesAndZeros);
        return Owned(result, "int4_mm");
    }

    /// <summary>
    /// Routed experts held as int4 stacks (<see cref="Experts.Int4Experts"/>' layout) for bf16
    /// <paramref name="hidden"/> <c>[T, hidden]</c>: <c>Σ_k weights[t,k] · expert_{slots[t,k]}(hidden[t])</c>,
    /// bf16 <c>[T, hidden]</c>; a slot outside the stacks adds nothing. No host synchronisation:
    /// the expert of each pick is read on the device (a block per pick, or per expert once picks outnumber experts).
    /// </summary>
    public Tensor Int4Moe(Tensor hidden, Tensor slots, Tensor weights, Tensor gateUpPacked, Tensor gateUpScales, Tensor downPacked, Tensor downScales, int groupSize)
    {
        var result = _int4Moe(hidden.Handle, slots.Handle, weights.Handle, gateUpPacked.Handle, gateUpScales.Handle, downPacked.Handle, downScales.Handle, groupSize);
        GC.KeepAlive(hidden);
        GC.KeepAlive(slots);
        GC.KeepAlive(weights);
        GC.KeepAlive(gateUpPacked);
        GC.KeepAlive(gateUpScales);
        GC.KeepAlive(downPacked);
        GC.KeepAlive(downScales);
        return Owned(result, "int4_moe");
    }

    /// <summary>One <see cref="Int4GroupQuantization"/> weight (uint8 <c>[N, K/2]</c>, bf16 <c>[K/group, N, 2]</c>) as bf16 <c>[N, K]</c>, in one kernel.</summary>
    public Tensor Int4Dequantize(Tensor packed, Tensor scalesAndZeros, int groupSize)
    {
        var result = _int4Dequantize(packed.Handle, scalesAndZeros.Handle, groupSize);
        GC.KeepAlive(packed);
        GC.KeepAlive(scalesAndZeros);
        return Owned(result, "int4_dequantize");
    }

    /// <summary>
    /// Routed experts held FP8-resident (<see cref="Experts.RoutedExperts"/>' stacks: E4M3 bytes gate/up
    /// <c>[E, 2·inter, hidden]</c> and down <c>[E, hidden, inter]</c> with their float32 block scales, the
    /// gate/up grid the gate rows' then the up rows') for bf16 <paramref name="hidden"/> <c>[T, hidden]</c>:
    /// what <see cref="Int4Moe"/> computes, each weight value the one the model dequantised to bf16 holds.
    /// No host synchronisation.
    /// </summary>
    public Tensor Fp8Moe(Tensor hidden, Tensor slots, Tensor weights, Tensor gateUp, Tensor gateUpScaleInv, Tensor down, Tensor downScaleInv)
    {
        var result = _fp8Moe(hidden.Handle, slots.Handle, weights.Handle, gateUp.Handle, gateUpScaleInv.Handle, down.Handle, downScaleInv.Handle);
        GC.KeepAlive(hidden);
        GC.KeepAlive(slots);
        GC.KeepAlive(weights);
        GC.KeepAlive(gateUp);
        GC.KeepAlive(gateUpScaleInv);
        GC.KeepAlive(down);
        GC.KeepAlive(downScaleInv);
        return Owned(result, "fp8_moe");
    }

    /// <summary>
    /// An FP8 weight or stack (uint8 <c>[(E,) rows, K]</c>, float32 block scales) as bf16 in one kernel;
    /// <paramref name="splitRows"/> names where a second scale grid starts (a gate/up stack: inter), 0 for one grid.
    /// </summary>
    public Tensor Fp8Dequantize(Tensor bytes, Tensor scaleInv, long splitRows = 0)
    {
        var result = _fp8Dequantize(bytes.Handle, scaleInv.Handle, splitRows);
        GC.KeepAlive(bytes);
        GC.KeepAlive(scaleInv);
        return Owned(result, "fp8_dequantize");
    }

    /// <summary>
    /// <see cref="Fp8Dequantize"/> ahead of its use, on a side stream that overlaps whatever the current
    /// stream runs until <see cref="PendingTensor.Take"/>, which makes the current stream wait for it.
    /// </summary>
    public PendingTensor Fp8DequantizeAhead(Tensor bytes, Tensor scaleInv, long splitRows = 0)
    {
        IntPtr ready;
        var result = _fp8DequantizeAhead(bytes.Handle, scaleInv.Handle, splitRows, &ready);
        GC.KeepAlive(bytes);
        GC.KeepAlive(scaleInv);
        return new PendingTensor(Owned(result, "fp8_dequantize_ahead"), this, ready);
    }

    internal void StreamWait(IntPtr ready) => Check(_streamWait(ready), "stream_wait");

    /// <summary>
    /// bf16 <paramref name="input"/> <c>[M, K]</c> times an FP8 weight's transpose, bf16 <c>[M, N]</c>: a few
    /// rows read the weight's bytes once (decode), more dequantise it and multiply with cuBLAS.
    /// </summary>
    public Tensor Fp8Linear(Tensor input, Tensor bytes, Tensor scaleInv)
    {
        var result = _fp8Linear(input.Handle, bytes.Handle, scaleInv.Handle);
        GC.KeepAlive(input);
        GC.KeepAlive(bytes);
        GC.KeepAlive(scaleInv);
        return Owned(result, "fp8_linear");
    }

    /// <summary>
    /// Joins the NCCL group of <paramref name="worldSize"/> ranks through the c10d TCPStore at
    /// <paramref name="storeHost"/>:<paramref name="storePort"/>, which rank 0 serves (a new store per
    /// call); blocks until every rank joined or <paramref name="timeout"/> passed. Rank 0 names the
    /// group's <paramref name="generation"/> (default 0); the others leave it null and learn it from the
    /// store. <paramref name="timeout"/> is also the group's own collective timeout, so it must exceed
    /// every wait given to a collective.
    /// </summary>
    public NcclProcessGroup CreateProcessGroup(string storeHost, int storePort, int rank, int worldSize, Device device, TimeSpan timeout, long? generation = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(storeHost);
        if (generation < 0) throw new ArgumentOutOfRangeException(nameof(generation), generation, "A generation is 0 or more.");
        var host = Marshal.StringToCoTaskMemUTF8(storeHost);
        try
        {
            var handle = _processGroupCreate(host, storePort, rank, worldSize, device.index, (long)timeout.TotalMilliseconds, rank == 0 ? generation ?? 0 : -1);
            handle = Check(handle, "process_group_create");
            return new NcclProcessGroup(this, handle, rank, worldSize, _processGroupGeneration(handle));
        }
        finally
        {
            Marshal.FreeCoTaskMem(host);
        }
    }

    internal void DestroyGraphPool(IntPtr pool) => _graphPoolDestroy(pool);

    internal void ReplayGraph(IntPtr graph) => Check(_graphReplay(graph), "graph_replay");

    internal void DestroyGraph(IntPtr graph) => _graphDestroy(graph);

    internal void AllToAll(IntPtr group, Tensor output, Tensor input, long[]? outputSplits, long[]? inputSplits, TimeSpan wait)
    {
        fixed (long* outSplits = outputSplits)
        fixed (long* inSplits = inputSplits)
        {
            var status = _processGroupAllToAll(group, output.Handle, input.Handle, outSplits, inSplits, outputSplits?.Length ?? 0, WaitMilliseconds(wait));
            GC.KeepAlive(output);
            GC.KeepAlive(input);
            Check(status, "all_to_all");
        }
    }

    internal void AllGather(IntPtr group, Tensor output, Tensor input, TimeSpan wait)
    {
        var status = _processGroupAllGather(group, output.Handle, input.Handle, WaitMilliseconds(wait));
        GC.KeepAlive(output);
        GC.KeepAlive(input);
        Check(status, "all_gather");
    }

    internal void Broadcast(IntPtr group, Tensor tensor, int root, TimeSpan wait)
    {
        var status = _processGroupBroadcast(group, tensor.Handle, root, WaitMilliseconds(wait));
        GC.KeepAlive(tensor);
        Check(status, "broadcast");
    }

    internal void AbortProcessGroup(IntPtr group) => _processGroupAbort(group);

    /// <summary>Zero: the stream waits, the host does not; otherwise at least a millisecond (0 would mean no bound).</summary>
    private static long WaitMilliseconds(TimeSpan wait) =>
        wait <= TimeSpan.Zero ? 0 : Math.Max(1, (long)Math.Ceiling(wait.TotalMilliseconds));

    internal void DestroyProcessGroup(IntPtr group) => _processGroupDestroy(group);

    private static IntPtr Export(IntPtr library, string name) =>
        NativeLibrary.TryGetExport(library, name, out var address) ? address : throw new MissingExportException($"the helper lacks {name}");

    private string LastError() => Marshal.PtrToStringUTF8(_lastError()) ?? "";

    private IntPtr Check(IntPtr handle, string operation) =>
        handle != IntPtr.Zero ? handle : throw new NativeHelperException($"{operation}: {LastError()}");

    private void Check(int status, string operation)
    {
        if (status != 0) throw new NativeHelperException($"{operation}: {LastError()}");
    }

    private Tensor Owned(IntPtr handle, string operation) => Tensor.UnsafeCreateTensor(Check(handle, operation));

    private sealed class MissingExportException(string message) : Exception(message);
}

/// <summary>A native helper call that failed; the message is LibTorch's.</summary>
public sealed class NativeHelperException(string message, Exception? inner = null) : InvalidOperationException(message, inner);
