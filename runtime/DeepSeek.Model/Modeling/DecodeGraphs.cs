using System.Runtime.InteropServices;
using DeepSeek.Model.Native;
using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// Decode steps replayed as CUDA graphs. A step in which every sequence adds one token is padded to
/// a batch bucket and a context bucket (<see cref="DecodeGraphBuckets"/>); the first step of each
/// (batch, context) pair runs the step body eagerly once, then captures it, and every later step of
/// that pair only copies its inputs into the captured tensors (one host-to-device copy) and replays.
/// Padding rows decode token 0 at position 0 into a scratch block that no sequence owns, and their
/// expert picks are left out of the reported load.
/// <para>
/// The body is the model's whole forward plus the LM head over static device inputs
/// (<see cref="DeepSeekForCausalLM.DecodeStep"/>): no host reads, no host-to-device copies, static
/// shapes; its routed experts go through the grouped GEMM (<see cref="Experts.ExpertComputePath.GroupedGemm"/>),
/// or int4 experts through their fused kernel (<see cref="Experts.ExpertComputePath.Int4Fused"/>).
/// Sampling runs after the replay on the step's logits rows.
/// </para>
/// <para>
/// Without a native helper the same padded body runs eagerly on every step: <c>--cuda-graphs false</c>
/// on CUDA (the same kernels on the same shapes, so graphs change the speed and never the tokens),
/// and the CPU in tests, which compare it with the model's own forward.
/// </para>
/// </summary>
public sealed class DecodeGraphs : IDisposable
{
    /// <summary>Captured (batch, context) pairs kept at most; steps of further pairs run eagerly.</summary>
    public const int MaxGraphs = 256;

    private readonly DeepSeekForCausalLM _model;
    private readonly MlaKvCache _cache;
    private readonly NativeHelper? _helper;
    private readonly CudaGraphPool? _pool;
    private readonly int _blockSize;
    private readonly int _paddingBlock;
    private readonly Dictionary<(int Batch, int Context), Step> _steps = [];
    private readonly Action<string>? _log;
    private readonly bool _warmUpBeforeCapture;
    private bool _captureFailed;

    /// <remarks>
    /// <c>paddingBlock</c>: a block of <c>cache</c> that no sequence is ever given; padding rows write
    /// and read it. <c>helper</c> captures and replays on CUDA; null runs the padded body eagerly.
    /// <c>warmUpBeforeCapture</c> false captures a new bucket without running its body eagerly first: a model
    /// whose body exchanges with other ranks in lockstep may run each agreed forward once, so the replay
    /// after the capture is the step's only run (and <see cref="Prepare"/> captures nothing).
    /// </remarks>
    public DecodeGraphs(DeepSeekForCausalLM model, MlaKvCache cache, int blockSize, int paddingBlock, DecodeGraphBuckets buckets, NativeHelper? helper,
        Action<string>? log = null, bool warmUpBeforeCapture = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentNullException.ThrowIfNull(buckets);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1);
        if (paddingBlock < 0 || (long)(paddingBlock + 1) * blockSize > cache.SlotCount)
            throw new ArgumentOutOfRangeException(nameof(paddingBlock), paddingBlock, $"The padding block must lie inside the cache's {cache.SlotCount} slots.");
        _model = model;
        _cache = cache;
        _blockSize = blockSize;
        _paddingBlock = paddingBlock;
        Buckets = buckets;
        _helper = helper;
        _log = log;
        _warmUpBeforeCapture = warmUpBeforeCapture;
        // The cache starts zeroed, so what padding rows attend over is finite before any writes it.
        _pool = helper?.CreateGraphPool();
    }

    public DecodeGraphBuckets Buckets { get; }

    /// <summary>(batch, context) pairs captured so far.</summary>
    public int Count => _steps.Count;

    /// <summary>
    /// The (batch, context) bucket <paramref name="batch"/> replays, or null when it is not a decode
    /// step this can run: a sequence adds more than one token, logits of every token are asked for,
    /// more sequences than the largest bucket, a forced attention form, or a context for which the
    /// model would not take the absorbed form (what the captured body uses). With <paramref name="rows"/>
    /// the batch bucket must be exactly that many rows (what the ranks of a lockstep group agreed to
    /// exchange), or null.
    /// </summary>
    public (int Batch, int Context)? BucketFor(ForwardBatch batch, long? rows = null)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Logits != LogitsSelection.LastTokenOfEachSequence || batch.Attention is not null || batch.BlockSize != _blockSize) return null;
        if (batch.Sequences.Count != batch.TokenCount || batch.Sequences.Any(s => s.Length != 1)) return null;
        if (rows is { } agreed && (agreed < batch.Sequences.Count || agreed > int.MaxValue || Buckets.For((int)agreed) != agreed)) return null;
        if (Buckets.For((int)(rows ?? batch.Sequences.Count)) is not { } bucket) return null;
        var longest = (int)batch.Sequences.Max(batch.ContextLength);
        var context = DecodeGraphBuckets.ContextBucket(longest, _blockSize);
        return AttentionForms.Choose(_model.Config, bucket, 1, context) == AttentionForm.Absorbed ? (bucket, context) : null;
    }

    /// <summary>
    /// The step's inputs as the captured body reads them, packed in one int64 array (one copy to the
    /// device): token ids, positions, cache slots and counted-row flags (<c>rows</c> each), then the
    /// block tables <c>[rows, context / blockSize]</c>. Rows past the batch and table entries past a
    /// sequence's blocks point at <paramref name="paddingBlock"/>. With <paramref name="adapters"/> (a model
    /// with LoRA slots) each row's adapter slot follows the tables (−1: none, padding rows included).
    /// </summary>
    public static long[] PackInputs(ForwardBatch batch, int rows, int context, int paddingBlock, bool adapters = false)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return Pack(batch, rows, context, batch.BlockSize, paddingBlock, adapters);
    }

    /// <summary><see cref="PackInputs"/>; a null batch packs a step whose rows are all padding.</summary>
    private static long[] Pack(ForwardBatch? batch, int rows, int context, int blockSize, int paddingBlock, bool adapters)
    {
        var n = batch?.Sequences.Count ?? 0;
        if (n > rows) throw new ArgumentException($"{n} sequences do not fit a bucket of {rows}.", nameof(rows));
        var blocksPerRow = context / blockSize;
        var packed = new long[PackedLength(rows, context, blockSize, adapters)];
        var tables = packed.AsSpan(4 * rows, rows * blocksPerRow);
        tables.Fill(paddingBlock);
        var adapterSlots = adapters ? packed.AsSpan((4 * rows) + (rows * blocksPerRow), rows) : [];
        adapterSlots.Fill(-1);
        var paddingSlot = (long)paddingBlock * blockSize;
        for (var i = 0; i < rows; i++)
        {
            if (i >= n)
            {
                packed[(2 * rows) + i] = paddingSlot;
                continue;
            }
            var span = batch!.Sequences[i];
            var position = batch.Positions[span.Start];
            packed[i] = batch.TokenIds[span.Start];
            packed[rows + i] = position;
            packed[(2 * rows) + i] = batch.SlotOf(span, position);
            packed[(3 * rows) + i] = 1;
            if (adapters) adapterSlots[i] = span.Adapter;
            var blocks = (int)((batch.ContextLength(span) + blockSize - 1) / blockSize);
            if (blocks > blocksPerRow) throw new ArgumentException($"Sequence {i} needs {blocks} blocks; the context bucket holds {blocksPerRow}.", nameof(context));
            for (var b = 0; b < blocks; b++) tables[(i * blocksPerRow) + b] = span.BlockIds[b];
        }
        return packed;
    }

    /// <summary>
    /// Runs <paramref name="batch"/> from its captured graph (capturing it first when its bucket is
    /// new), or returns null when <see cref="BucketFor"/> rejects it or capturing is off, so the
    /// caller runs the model's forward instead. The logits returned are a view of the graph's output:
    /// read them before the next step. <paramref name="rows"/>: the bucket's rows, as <see cref="BucketFor"/> says.
    /// </summary>
    public ForwardOutput? TryForward(ForwardBatch batch, long? rows = null)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (BucketFor(batch, rows) is not { } key) return null;
        batch.Validate(_model.Config.VocabSize, _cache.SlotCount);
        var inputs = PackInputs(batch, key.Batch, key.Context, _paddingBlock, HasAdapters);
        if (_steps.TryGetValue(key, out var step)) step.Fill(inputs);
        else if (Add(key, inputs) is not { } added) return null;
        else step = added;
        step.Run(_model, _cache);
        using var noGrad = no_grad();
        var logits = step.Logits.narrow(0, 0, batch.Sequences.Count);
        return new ForwardOutput(logits, step.Counts, ownsCounts: false, _model.ReadLoads);
    }

    /// <summary>Batch buckets up to this size are captured at warm-up (<see cref="Prepare"/>).</summary>
    public const int PreparedBatches = 8;

    /// <summary>
    /// Captures the batch buckets up to <see cref="PreparedBatches"/> at the smallest context bucket
    /// now (largest first, so the shared pool is sized once), with every row a padding row: what
    /// warm-up does, so that a server's first requests do not pay for capturing. Each capture costs a
    /// step run eagerly plus the capture (all eleven buckets up to 64 sequences took about 3 s for
    /// V2-Lite on an H200), so larger batches and longer contexts are captured when first met instead
    /// of delaying readiness by seconds.
    /// </summary>
    /// <returns>Buckets captured by this call.</returns>
    public int Prepare()
    {
        var context = DecodeGraphBuckets.ContextBucket(1, _blockSize);
        var captured = 0;
        foreach (var rows in Buckets.CaptureOrder.Where(b => b <= PreparedBatches))
        {
            if (_helper is null || !_warmUpBeforeCapture || _steps.ContainsKey((rows, context))) continue;
            if (Add((rows, context), Pack(null, rows, context, _blockSize, _paddingBlock, HasAdapters)) is null) break;
            captured++;
        }
        return captured;
    }

    /// <summary>
    /// A new bucket with <paramref name="inputs"/> filled in, captured (with the helper) after one
    /// eager run; null when no more may be captured, or when capturing fails: that turns capturing
    /// off with a log line, since a step that cannot be captured (an op that synchronises) must not
    /// fail serving. Other failures (the eager run's) are the step's and are thrown.
    /// </summary>
    private Step? Add((int Batch, int Context) key, long[] inputs)
    {
        if (_captureFailed || _steps.Count >= MaxGraphs) return null;
        var step = new Step(key.Batch, key.Context, _blockSize, _model.Device, HasAdapters);
        try
        {
            step.Fill(inputs);
            Record(step);
        }
        catch (Exception e)
        {
            step.Dispose();
            if (_helper is null || e is not (NativeHelperException or ExternalException)) throw;
            _captureFailed = true;
            _log?.Invoke($"CUDA graphs: capturing a decode step of {key.Batch} × {key.Context} failed, decode runs eagerly from now on: {e.Message}");
            return null;
        }
        _steps[key] = step;
        return step;
    }

    /// <summary>Values in the packed inputs of a (rows, context) bucket: four per row, then the block tables, then the adapter slots.</summary>
    private static int PackedLength(int rows, int context, int blockSize, bool adapters) => ((adapters ? 5 : 4) * rows) + (rows * (context / blockSize));

    /// <summary>Whether the model has LoRA slots: then every step carries each row's slot (the graph applies them whatever they hold).</summary>
    private bool HasAdapters => _model.Lora is not null;

    private void Record(Step step)
    {
        if (_helper is null) return;
        // As torch.cuda.graphs asks: run the work once eagerly (library handles, workspaces), then capture;
        // a lockstep model's earlier eager steps warmed the same kernels up.
        if (_warmUpBeforeCapture) step.Run(_model, _cache);
        var captured = _helper.CaptureGraph(_pool, _model.Device, () => step.RunBody(_model, _cache));
        step.Adopt(captured);
        _log?.Invoke($"CUDA graphs: captured a decode step of {step.Rows} sequences × {step.Context} context tokens ({_steps.Count + 1} so far)");
    }

    /// <summary>
    /// Drops every captured step: what they recorded reads tensors that are no longer the model's (a placement
    /// switch replaced a sharded layer's experts and lookup tables). Later steps capture again on first use.
    /// </summary>
    public void Clear()
    {
        foreach (var step in _steps.Values) step.Dispose();
        _steps.Clear();
    }

    public void Dispose()
    {
        Clear();
        _pool?.Dispose();
    }

    /// <summary>One (batch, context) bucket: its static inputs, its outputs and, on CUDA, its graph.</summary>
    private sealed class Step : IDisposable
    {
        private readonly Tensor _inputs;
        // Views of _inputs in PackInputs' layout, made once: the body reads them on every eager run.
        private readonly Tensor _tokenIds, _positions, _slotMapping, _countedRows, _blockTables;
        private readonly Tensor? _adapterSlots;
        private CudaGraph? _graph;

        public Step(int rows, int context, int blockSize, Device device, bool adapters)
        {
            (Rows, Context) = (rows, context);
            _inputs = zeros([PackedLength(rows, context, blockSize, adapters)], ScalarType.Int64, device).DetachFromDisposeScope();
            if (adapters) _adapterSlots = _inputs.narrow(0, (4 * rows) + (rows * (context / blockSize)), rows).DetachFromDisposeScope();
            _tokenIds = _inputs.narrow(0, 0, rows).DetachFromDisposeScope();
            _positions = _inputs.narrow(0, rows, rows).DetachFromDisposeScope();
            _slotMapping = _inputs.narrow(0, 2 * rows, rows).DetachFromDisposeScope();
            _countedRows = _inputs.narrow(0, 3 * rows, rows).DetachFromDisposeScope();
            _blockTables = _inputs.narrow(0, 4 * rows, rows * (context / blockSize)).view(rows, context / blockSize).DetachFromDisposeScope();
        }

        public int Rows { get; }

        public int Context { get; }

        public Tensor Logits { get; private set; } = null!;

        public Tensor Counts { get; private set; } = null!;

        public void Fill(long[] packed)
        {
            using var host = tensor(packed);
            _inputs.copy_(host);
        }

        /// <summary>Replays the graph, or (before capture, or with no helper) runs the body eagerly.</summary>
        public void Run(DeepSeekForCausalLM model, MlaKvCache cache)
        {
            if (_graph is not null)
            {
                _graph.Replay();
                return;
            }
            RunBody(model, cache);
        }

        /// <summary>The body (what a capture records): its outputs replace the previous ones.</summary>
        public void RunBody(DeepSeekForCausalLM model, MlaKvCache cache)
        {
            var (logits, counts) = model.DecodeStep(_tokenIds, _positions, _slotMapping, _countedRows, _blockTables, Context, cache, _adapterSlots);
            Logits?.Dispose();
            Counts?.Dispose();
            Logits = logits.DetachFromDisposeScope();
            Counts = counts.DetachFromDisposeScope();
        }

        public void Adopt(CudaGraph graph) => _graph = graph;

        public void Dispose()
        {
            _graph?.Dispose();
            Logits?.Dispose();
            Counts?.Dispose();
            foreach (var view in new[] { _tokenIds, _positions, _slotMapping, _countedRows, _blockTables }) view.Dispose();
            _adapterSlots?.Dispose();
            _inputs.Dispose();
        }
    }
}
