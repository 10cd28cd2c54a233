using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Sampling;
using DeepSeek.Engine.Scheduling;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Lora;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Native;
using DeepSeek.Model.Parallelism;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Engine.Execution;

/// <summary>
/// Runs engine steps on the device: builds the model's <see cref="ForwardBatch"/> from the step's
/// block tables, runs the forward, and samples on the device, so only token ids (and requested
/// log-probabilities) cross to the host. Owns the model, one <see cref="MlaKvCache"/> of
/// <c>numBlocks × blockSize</c> slots whose slot numbers are the block pool's (slot = block × size +
/// offset), and the per-request sampling generators. Create, use and dispose it on the engine thread.
/// </summary>
internal sealed class ModelRunner : IModelRunner
{
    private readonly MlaKvCache _cache;
    private readonly Sampler _sampler;
    private readonly DecodeGraphs? _graphs;
    // Data-parallel attention over a collective group: every forward is agreed with the peers first.
    private readonly LockstepExpertTransport? _lockstep;
    // The placement the captured decode steps of a lockstep rank were recorded under.
    private long _graphsPlacement = ExpertPlacement.InitialVersion;

    /// <remarks>
    /// With <c>decodeBuckets</c>, decode steps run the padded decode body of <see cref="DecodeGraphs"/>
    /// (the cache then gets one block more than <c>numBlocks</c>, which padding rows write), captured
    /// and replayed as CUDA graphs when <c>graphs</c> (the native helper) is given, eagerly otherwise:
    /// the same kernels on the same shapes either way, so graphs change the speed, never the tokens.
    /// Without it every step runs the model's forward.
    /// </remarks>
    public ModelRunner(DeepSeekForCausalLM model, int numBlocks, int blockSize, IReadOnlyList<int> eosTokenIds,
        DecodeGraphBuckets? decodeBuckets = null, NativeHelper? graphs = null, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(numBlocks, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1);
        Model = model;
        NumBlocks = numBlocks;
        BlockSize = blockSize;
        _sampler = new Sampler(eosTokenIds);
        _lockstep = ExpertParallelism.LockstepOf(model);
        // Its peers' rows are computed with the experts of the model this runner runs.
        _lockstep?.Bind(model);
        _cache = model.CreateCache((long)(numBlocks + (decodeBuckets is null ? 0 : 1)) * blockSize);
        // A lockstep rank runs each agreed forward once: a new bucket is captured without an eager run first.
        if (decodeBuckets is not null) _graphs = new DecodeGraphs(model, _cache, blockSize, paddingBlock: numBlocks, decodeBuckets, graphs, log, warmUpBeforeCapture: _lockstep is null);
    }

    /// <summary>
    /// Loads the model (on the calling thread, which then owns its tensors), sizes the KV pool from
    /// the settings and the device memory left after the weights, and allocates it. On CUDA the
    /// native helper, when present, computes the routed experts (grouped GEMM) and captures decode
    /// steps as graphs; <paramref name="log"/> says which, or why not.
    /// </summary>
    public static ModelRunner Load(EngineOptions options, Func<DeepSeekForCausalLM> loadModel, Action<string>? log = null, LoraAdapterSet? adapters = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loadModel);
        var model = loadModel();
        try
        {
            var config = model.Config;
            // Before the decode graphs exist: a captured step reads the slots' static buffers.
            if (adapters is not null && adapters.SlotModules() is { Count: > 0 } modules)
            {
                LoraSlots.Attach(model, options.MaxLoras, options.MaxLoraRank, modules);
                log?.Invoke($"LoRA: {options.MaxLoras} adapter slot(s) of rank up to {options.MaxLoraRank} on {modules.Count} projections; {adapters.All.Count} adapter(s) loaded.");
            }
            var (syncFreeBatch, graphs) = NativeKernels(model, options, log);
            var bytesPerBlock = BytesPerBlock(config, model.DType, options.BlockSize);
            var free = options.KvCacheBlocks is null ? DeviceMemory.FreeBytes(options.Device) : 0;
            var blocks = KvCacheSizing.NumBlocks(options.KvCacheBlocks, options.KvCacheMemoryFraction, free, bytesPerBlock,
                options.BlockSize, options.ContextTokens(config.MaxPositionEmbeddings), options.MaxRunningRequests);
            return new ModelRunner(model, blocks, options.BlockSize, config.EosTokenId is { } eos ? [eos] : [],
                syncFreeBatch > 0 ? DecodeGraphBuckets.UpTo(syncFreeBatch) : null, graphs, log);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// On CUDA, with the native helper: the routed experts as grouped GEMMs (int4 and FP8 experts by their
    /// own kernels), and the largest decode batch that then runs without a host synchronisation in any MoE
    /// layer (0: none; experts sharded over gRPC or the leader shape, or a dtype other than bf16). Decode steps up to it run padded to
    /// buckets and, when graphs are asked for, captured (the helper is returned for that); larger steps
    /// run eagerly. Elsewhere nothing changes; <paramref name="log"/> says which, or why not.
    /// </summary>
    private static (int SyncFreeBatch, NativeHelper? Graphs) NativeKernels(DeepSeekForCausalLM model, EngineOptions options, Action<string>? log)
    {
        if (model.Device.type != DeviceType.CUDA) return (0, null);
        var helper = NativeHelper.TryLoad(out var reason);
        if (helper is null)
        {
            log?.Invoke($"native helper: {reason} Routed experts run without the grouped GEMM and decode steps are not captured as CUDA graphs.");
            return (0, null);
        }
        var syncFreeTokens = DeepSeek.Model.Native.NativeKernels.Apply(model, helper);
        var syncFreeBatch = (int)Math.Min(options.MaxRunningRequests, syncFreeTokens);
        var experts = model.Quantization.IsInt4 ? "int4 experts run their fused kernel up to " + Int4Experts.FusedMaxTokens + " tokens"
            : model.Quantization.IsFp8 && syncFreeTokens == long.MaxValue ? "FP8 projections and experts run the helper's FP8 kernels (experts up to " + LocalExperts.Fp8FusedMaxTokens + " tokens, then dequantised for grouped GEMMs)"
            : syncFreeTokens == long.MaxValue ? "routed experts run as grouped GEMMs" : "routed experts synchronise with the host (sharded over a transport that reads split sizes back, or not bf16)";
        var prefill = model.PacksExpandedAttention ? $"prefill attention runs {model.ExpandedAttentionKernel}"
            : "prefill attention keeps SDPA over the padded view (DEEPSEEK_FLASH_VARLEN unset, float32, or the helper's kernel refused this GPU)";
        log?.Invoke($"native helper: {reason}; {experts}; {prefill}.");
        if (syncFreeBatch == 0)
        {
            log?.Invoke("CUDA graphs: off, since the MoE layers synchronise with the host (experts sharded over a transport that reads split sizes back, or a dtype other than bf16); decode runs eagerly.");
            return (0, null);
        }
        if (!options.CudaGraphs)
        {
            log?.Invoke("CUDA graphs: off (--cuda-graphs false); decode steps run the same padded step eagerly.");
            return (syncFreeBatch, null);
        }
        log?.Invoke($"CUDA graphs: decode steps of up to {syncFreeBatch} sequences are captured per (batch, context) bucket, up to {DecodeGraphs.PreparedBatches} sequences at warm-up, the rest on first use.");
        return (syncFreeBatch, helper);
    }

    public DeepSeekForCausalLM Model { get; }

    public DeepSeekConfig Config => Model.Config;

    public int NumBlocks { get; }

    public int BlockSize { get; }

    /// <summary>Bytes of one KV block over all layers: what the pool sizing divides memory by.</summary>
    public static long BytesPerBlock(DeepSeekConfig config, ScalarType dtype, int blockSize)
    {
        ArgumentNullException.ThrowIfNull(config);
        return MlaKvCache.ValuesPerToken(config) * blockSize * ElementSize(dtype);
    }

    public static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => 8,
        ScalarType.Float32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a model dtype."),
    };

    public ModelRunnerOutput Execute(SchedulerStep step)
    {
        ArgumentNullException.ThrowIfNull(step);
        _sampler.Forget(step.FinishedRequestIds);
        if (step.IsEmpty) return ModelRunnerOutput.Empty;
        var batch = ForwardBatchLayout.Build(step, BlockSize, AdapterSlots(step));

        // The forward returns one logits row per sequence; only the sampling sequences' rows are sampled.
        var rows = new List<long>(step.Sequences.Count);
        var requests = new List<EngineRequest>(step.Sequences.Count);
        for (var s = 0; s < step.Sequences.Count; s++)
        {
            if (!step.Sequences[s].SamplesToken) continue;
            rows.Add(s);
            requests.Add(step.Sequences[s].Request);
        }

        try
        {
            using var scope = NewDisposeScope();
            _lockstep?.AgreeForward(batch.TokenCount, DecodeRows(batch));
            using var output = Forward(batch);
            if (requests.Count == 0) return new ModelRunnerOutput(new Dictionary<string, SampledToken>(), output.ExpertLoads);
            var logits = rows.Count == step.Sequences.Count ? output.Logits : output.Logits.index_select(0, tensor(rows.ToArray(), device: Model.Device));
            // Sampling is queued before the expert loads are read (the forward's one synchronisation), so
            // its host work overlaps the forward still running on the device.
            var tokens = _sampler.Sample(logits, requests);
            var sampled = new Dictionary<string, SampledToken>(requests.Count);
            for (var i = 0; i < requests.Count; i++) sampled[requests[i].Id] = tokens[i];
            return new ModelRunnerOutput(sampled, output.ExpertLoads) { MaskElapsed = _sampler.LastMaskElapsed };
        }
        catch (Exception e) when (IsUnrecoverable(e))
        {
            throw new UnrecoverableStepException($"The device cannot continue: {e.Message}", e);
        }
    }

    /// <summary>The slot of each sequence's adapter, swapping adapters into the model's slots as the step needs (null: no slots).</summary>
    private int[]? AdapterSlots(SchedulerStep step)
    {
        if (Model.Lora is not { } slots)
        {
            if (step.Sequences.Any(s => s.Request.Adapter is not null))
                throw new InvalidOperationException("A request names a LoRA adapter, but the model has no adapter slots.");
            return null;
        }
        return slots.Place([.. step.Sequences.Select(s => s.Request.Adapter)]);
    }

    /// <summary>
    /// The rows this rank proposes for a fixed-capacity exchange (<see cref="LockstepExpertTransport.AgreeForward"/>):
    /// for a decode step, the batch bucket its captured graph would run, or its sequences when it runs eagerly;
    /// <see cref="LockstepExpertTransport.NotDecode"/> for any other step.
    /// </summary>
    private long DecodeRows(ForwardBatch batch)
    {
        if (_lockstep is null || batch.Sequences.Count != batch.TokenCount) return LockstepExpertTransport.NotDecode;
        return _graphs?.BucketFor(batch) is { } bucket ? bucket.Batch : batch.Sequences.Count;
    }

    /// <summary>
    /// The step's forward: replayed from a decode graph where one applies, else the model's own. A lockstep
    /// rank replays only a graph of the rows every rank agreed to exchange (none when the forward exchanges
    /// with split sizes, which read back to the host), and tells the transport how the forward ran.
    /// </summary>
    private ForwardOutput Forward(ForwardBatch batch)
    {
        if (_graphs is null) return Model.Forward(batch, _cache);
        if (_lockstep is null) return _graphs.TryForward(batch) ?? Model.Forward(batch, _cache);
        // A placement switch (at an agreement) replaced the experts and lookup tables the graphs read.
        if (ExpertParallelism.VersionOf(Model) is var placement && placement != _graphsPlacement)
        {
            _graphs.Clear();
            _graphsPlacement = placement;
        }
        if (_lockstep.FixedRows is { } rows && _graphs.TryForward(batch, rows) is { } replayed)
        {
            _lockstep.ReplayedForward();
            return replayed;
        }
        _lockstep.RestartForward();
        return Model.Forward(batch, _cache);
    }

    /// <summary>
    /// Failures after which no step can succeed: managed memory exhausted, or a CUDA error that leaves
    /// the context unusable (a device-side assert, an illegal access). A CUDA out-of-memory error is not
    /// among them: the allocator recovers once the step's tensors are freed.
    /// </summary>
    private static bool IsUnrecoverable(Exception e) =>
        e is OutOfMemoryException
        || (e.Message.Contains("CUDA error", StringComparison.Ordinal) && !e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase))
        || e.Message.Contains("device-side assert", StringComparison.Ordinal)
        || e.Message.Contains("illegal memory access", StringComparison.Ordinal);

    public float[] Embed(IReadOnlyList<int> tokenIds)
    {
        ArgumentNullException.ThrowIfNull(tokenIds);
        using var scope = NewDisposeScope();
        using var cache = Model.CreateCache(tokenIds.Count);
        var batch = ForwardBatch.Contiguous(tokenIds.Select(id => (long)id).ToArray(), 0, LogitsSelection.AllTokens);
        _lockstep?.AgreeForward(batch.TokenCount);
        using var hidden = Model.FinalHiddenStates(batch, cache);
        var mean = hidden.to(ScalarType.Float32).mean([0L]);
        var unit = nn.functional.normalize(mean.unsqueeze(0), p: 2, dim: 1).squeeze(0);
        return unit.to(CPU).contiguous().data<float>().ToArray();
    }

    public void WarmUp(int blockId)
    {
        var count = Math.Min(BlockSize, 4);
        var batch = new ForwardBatch(
            Enumerable.Range(0, count).Select(t => (long)(t % Config.VocabSize)).ToArray(),
            Enumerable.Range(0, count).Select(p => (long)p).ToArray(),
            [new SequenceSpan(0, count, [blockId])],
            BlockSize);
        using var scope = NewDisposeScope();
        _lockstep?.AgreeForward(batch.TokenCount);
        using var output = Model.Forward(batch, _cache);
        _ = LogitsProcessing.ArgMax(output.Logits).cpu();
        // Decode graphs of the small batch buckets, so that the first requests do not pay for capturing them.
        _graphs?.Prepare();
    }

    public LockstepTurn IdleTurn()
    {
        if (_lockstep is null) return LockstepTurn.Solo;
        if (_lockstep.Group is null) return LockstepTurn.GroupUnavailable;
        try
        {
            return _lockstep.IdleTurn() ? LockstepTurn.JoinedPeers : LockstepTurn.AllIdle;
        }
        catch (ExpertTransportException)
        {
            // The group failed and is detached with the reason; forwards say it until it re-forms.
            return LockstepTurn.GroupUnavailable;
        }
    }

    public void Dispose()
    {
        // Its peers take their turns with this rank no more.
        _lockstep?.Leave();
        _graphs?.Dispose();
        _sampler.Dispose();
        _cache.Dispose();
        Model.Dispose();
    }
}
