using System.Globalization;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Layers;
using DeepSeek.Model.Lora;
using DeepSeek.Model.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// DeepSeek-V2/V3 as a causal language model over flattened <c>[tokens, hidden]</c> batches with
/// explicit positions and KV-cache slots (<see cref="ForwardBatch"/>). Field names equal the
/// checkpoint's tensor names, so weights load by state-dict name.
/// <para>
/// Life cycle: <see cref="Build"/> declares every weight on the meta device (no memory, nothing about
/// ranks); passes may then reshape the built model (expert parallelism keeps a rank's experts only);
/// <see cref="Materialise"/> allocates what is declared on the target device and fills it from the
/// memory-mapped checkpoint. <see cref="Load"/> does the first and last step for one process.
/// </para>
/// </summary>
public sealed class DeepSeekForCausalLM : nn.Module
{
    private readonly DeepSeekModel model;
    private readonly Linear lm_head;
    private readonly RotaryEmbedding _rotary;
    private Device? _device;

    private DeepSeekForCausalLM(DeepSeekConfig config, ScalarType dtype) : base(nameof(DeepSeekForCausalLM))
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64))
            throw new ArgumentException($"dtype {dtype} is not supported; use float32, bfloat16, float16 or float64.", nameof(dtype));
        Config = config;
        DType = dtype;
        _rotary = new RotaryEmbedding(config);
        model = new DeepSeekModel(nameof(model), config, dtype);
        lm_head = new Linear(nameof(lm_head), config.HiddenSize, config.VocabSize, false, dtype);
        RegisterComponents();
    }

    public DeepSeekConfig Config { get; }

    public ScalarType DType { get; }

    /// <summary>Where the weights live; set by <see cref="Materialise"/>.</summary>
    public Device Device => _device ?? throw new InvalidOperationException("The model is built but not materialised yet.");

    public bool IsMaterialised => _device is not null;

    /// <summary>The routed experts of every MoE layer, in layer order: what a placement pass shards.</summary>
    public IReadOnlyList<RoutedExperts> RoutedExperts => model.RoutedExperts;

    /// <summary>The adapter slots (<see cref="LoraSlots.Attach"/>), when this model serves LoRA adapters.</summary>
    public LoraSlots? Lora { get; internal set; }

    /// <summary>Parameters declared (before materialisation) or held (after): what this process allocates.</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    public long ParameterBytes => parameters().Sum(p => p.numel() * p.element_size());

    /// <summary>
    /// Attention over sequences packed without padding, which every expanded step then uses instead of
    /// SDPA over the padded view (<see cref="VarlenAttention"/>): FlashAttention on CUDA, set by
    /// <see cref="Native.NativeKernels.Apply"/>; null keeps SDPA (CPU, float32, no helper).
    /// </summary>
    internal VarlenAttentionKernel? VarlenKernel { get; set; }

    /// <summary>Whether expanded (prefill) steps attend over packed sequences (<see cref="VarlenKernel"/>).</summary>
    public bool PacksExpandedAttention => VarlenKernel is not null;

    /// <summary>What expanded (prefill) steps attend with, in words, for the load's log.</summary>
    public string ExpandedAttentionKernel => VarlenKernelName is { } name && VarlenKernel is not null ? name : "SDPA over the padded view";

    /// <summary>The name of <see cref="VarlenKernel"/> (<see cref="ExpandedAttentionKernel"/>).</summary>
    internal string? VarlenKernelName { get; set; }

    /// <summary>How the weights are held: <see cref="WeightQuantization.None"/> until the int4 pass (<see cref="Int4Quantization"/>).</summary>
    public WeightQuantization Quantization { get; internal set; } = WeightQuantization.None;

    /// <summary>Bytes of weights on the device, int4 weights included: what the model costs in memory.</summary>
    public long ResidentBytes => ResidentBytesByModule().Sum(m => m.Bytes);

    /// <summary>The weight bytes each module holds itself (not its children), by module name (<c>model.layers.1.mlp.experts</c>).</summary>
    public IEnumerable<(string Module, long Bytes)> ResidentBytesByModule() => named_modules().Select(m => (m.name, m.module switch
    {
        Linear linear => linear.ResidentBytes,
        RoutedExperts experts => experts.ResidentBytes,
        _ => WeightedModule.OwnBytes(m.module),
    }));

    /// <summary>The module tree of <paramref name="config"/> with every weight declared on the meta device.</summary>
    public static DeepSeekForCausalLM Build(DeepSeekConfig config, ScalarType dtype)
    {
        ArgumentNullException.ThrowIfNull(config);
        // A module is a LibTorch object: on a GPU bundle (no CPU LibTorch of its own) LibTorch must come
        // from DEEPSEEK_LIBTORCH_DIR first, even for a model that is only declared (the memory plan before
        // serve's load, inspect), or TorchSharp fails to find its native library.
        Devices.TorchRuntime.EnsureLoaded();
        return new DeepSeekForCausalLM(config, dtype);
    }

    /// <summary>
    /// Builds the model of the folder's config.json, applies <paramref name="passes"/> to the built
    /// model (e.g. the expert-parallel pass, <see cref="Parallelism.ExpertParallelism"/>), materialises
    /// what is left of it from its safetensors, and applies <paramref name="loadedPasses"/> to the loaded
    /// weights (e.g. the int4 pass, <see cref="Int4Quantization"/>).
    /// </summary>
    /// <remarks>
    /// <c>config</c>: the folder's config.json when the caller has already read it.
    /// <c>log</c> gets the load's progress (<see cref="LoadProgressLog"/>: a line every few seconds and
    /// the total with its rate, timed by <c>time</c>).
    /// </remarks>
    public static DeepSeekForCausalLM Load(string directory, ScalarType dtype, Device device, Action<DeepSeekForCausalLM>? passes = null,
        Action<DeepSeekForCausalLM>? loadedPasses = null, Action<string>? log = null, TimeProvider? time = null, DeepSeekConfig? config = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var checkpoint = SafetensorsCheckpoint.Open(directory);
        var result = Build(config ?? DeepSeekConfig.Load(directory), dtype);
        try
        {
            passes?.Invoke(result);
            result.Materialise(checkpoint, device, log is null ? null : new LoadProgressLog(log), time);
            loadedPasses?.Invoke(result);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A model of <paramref name="config"/>'s shape without a checkpoint, for benchmarks: weights from
    /// normal(0, 0.02), norms 1, router biases 0; see <see cref="MaterialiseRandom"/>.
    /// </summary>
    public static DeepSeekForCausalLM CreateRandom(DeepSeekConfig config, ScalarType dtype, Device device, long seed) =>
        Build(config, dtype).MaterialiseRandom(seed, device);

    /// <summary>
    /// Allocates every declared weight on <paramref name="device"/> and copies it from the checkpoint
    /// (<see cref="SafetensorsCheckpoint.LoadInto"/>: in file order, read ahead), telling
    /// <paramref name="progress"/> as it goes.
    /// </summary>
    public DeepSeekForCausalLM Materialise(SafetensorsCheckpoint checkpoint, Device device, IProgress<LoadProgress>? progress = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        Allocate(device);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        // Tied embeddings: a checkpoint may omit lm_head.weight and reuse the embedding table.
        var targets = CheckpointTensors()
            .Select(t => (t.Name == "lm_head.weight" && Config.TieWordEmbeddings && !checkpoint.Contains(t.Name) ? "model.embed_tokens.weight" : t.Name, t.Target))
            .ToList();
        checkpoint.LoadInto(targets, Config.Quantization, progress, time);
        return this;
    }

    /// <summary>
    /// Allocates every declared weight and fills it as <see cref="CreateRandom"/> describes. Each
    /// checkpoint tensor is drawn from its own seed (mixed from <paramref name="seed"/> and its name),
    /// so an expert has the same weights on whichever rank holds it.
    /// </summary>
    public DeepSeekForCausalLM MaterialiseRandom(long seed, Device device)
    {
        Allocate(device);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (name, target) in CheckpointTensors())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) target.fill_(HeldScalars.OneReal);
            else if (name.EndsWith("e_score_correction_bias", StringComparison.Ordinal)) target.zero_();
            else if (device.type == DeviceType.CPU)
            {
                using var generator = new Generator(TensorSeed(seed, name), device);
                target.normal_(0.0, 0.02, generator);
            }
            else
            {
                // TorchSharp's Generator is a CPU generator whatever device it is given, and CUDA
                // kernels refuse it; seed the device's default generator instead.
                cuda.manual_seed((long)TensorSeed(seed, name));
                target.normal_(0.0, 0.02);
            }
        }
        return this;
    }

    /// <summary>A cache of <paramref name="slotCount"/> token slots sized for this model.</summary>
    public MlaKvCache CreateCache(long slotCount) =>
        new(Config.NumHiddenLayers, slotCount, MlaKvCache.LatentDimensionOf(Config), DType, Device);

    /// <summary>
    /// Runs one step: writes every token's latent to its slot, attends over each sequence's context
    /// slots, and returns logits for the rows <see cref="ForwardBatch.Logits"/> selects, with the
    /// routed (token, expert) pairs each expert of each MoE layer received.
    /// </summary>
    public ForwardOutput Forward(ForwardBatch batch, MlaKvCache cache)
    {
        CheckBatch(batch, cache);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var metadata = AttentionMetadata.Build(batch, Config, _rotary, DType, Device, VarlenKernel);
        using var adapters = Lora?.Select(AdapterRows(batch));
        var (hidden, counts) = model.Forward(tensor(batch.TokenIds, device: Device), metadata, cache);
        // With one token per sequence in batch order, each sequence's last token is its row already.
        if (batch.Logits == LogitsSelection.LastTokenOfEachSequence && !metadata.RowsInBatchOrder)
        {
            var rows = batch.Sequences.Select(s => (long)(s.Start + s.Length - 1)).ToArray();
            hidden = hidden.index_select(0, tensor(rows, device: Device));
        }
        var logits = lm_head.Forward(model.Norm(hidden));
        return new ForwardOutput(logits.MoveToOuterDisposeScope(), StackCounts(counts).MoveToOuterDisposeScope(), ownsCounts: true, ReadLoads);
    }

    /// <summary>
    /// A decode step over static device inputs (<see cref="DecodeGraphs"/>' captured body): one token
    /// per row, <paramref name="context"/> gathered context slots per row through
    /// <paramref name="blockTables"/>. Nothing here reads the host or copies from it.
    /// </summary>
    /// <returns>Logits <c>[rows, vocab]</c> and the counted rows' picks per expert of every MoE layer, <c>[MoE layers, n_routed_experts]</c>.</returns>
    /// <remarks><paramref name="adapterSlots"/>: each row's adapter slot (−1: none), when the model has <see cref="Lora"/> slots.</remarks>
    internal (Tensor Logits, Tensor Counts) DecodeStep(Tensor tokenIds, Tensor positions, Tensor slotMapping, Tensor countedRows, Tensor blockTables, int context, MlaKvCache cache,
        Tensor? adapterSlots = null)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var blockSize = context / (int)blockTables.shape[1];
        using var metadata = AttentionMetadata.ForDecode(positions, slotMapping, blockTables, countedRows, context, blockSize, _rotary, DType);
        using var adapters = Lora?.Select(adapterSlots);
        var (hidden, counts) = model.Forward(tokenIds, metadata, cache);
        var logits = lm_head.Forward(model.Norm(hidden));
        return (logits.MoveToOuterDisposeScope(), StackCounts(counts).MoveToOuterDisposeScope());
    }

    /// <summary>Each token's adapter slot (its sequence's), or null when no sequence of the batch has one: a base-only step adds nothing.</summary>
    private Tensor? AdapterRows(ForwardBatch batch)
    {
        if (Lora is null || batch.Sequences.All(s => s.Adapter < 0)) return null;
        var rows = new long[batch.TokenCount];
        foreach (var span in batch.Sequences) rows.AsSpan(span.Start, span.Length).Fill(span.Adapter);
        return tensor(rows, device: Device);
    }

    /// <summary>Every MoE layer's counts as one <c>[MoE layers, n_routed_experts]</c> tensor, in layer order.</summary>
    private Tensor StackCounts(IReadOnlyList<(int Layer, Tensor Counts)> counts) =>
        counts.Count == 0 ? zeros([0, Config.NRoutedExperts], ScalarType.Int64, Device) : stack(counts.Select(c => c.Counts).ToArray());

    /// <summary>
    /// Final hidden states (after the final norm, before the LM head) of every token of the batch,
    /// <c>[tokens, hidden]</c>; the caller owns them. What embeddings are made of.
    /// </summary>
    public Tensor FinalHiddenStates(ForwardBatch batch, MlaKvCache cache)
    {
        CheckBatch(batch, cache);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var metadata = AttentionMetadata.Build(batch, Config, _rotary, DType, Device, VarlenKernel);
        using var adapters = Lora?.Select(AdapterRows(batch));
        var (hidden, _) = model.Forward(tensor(batch.TokenIds, device: Device), metadata, cache);
        return model.Norm(hidden).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Every MoE layer's per-expert counts (<see cref="StackCounts"/>) copied to the host in one
    /// transfer: the one synchronisation of a forward.
    /// </summary>
    internal IReadOnlyList<ExpertLoad> ReadLoads(Tensor stacked)
    {
        var experts = model.RoutedExperts;
        if (experts.Count == 0) return [];
        using var host = stacked.cpu();
        var width = (int)host.shape[1];
        var flat = host.data<long>().ToArray();
        return [.. experts.Select((e, i) =>
        {
            var tokens = flat.AsSpan(i * width, width).ToArray();
            return new ExpertLoad(e.LayerIndex, tokens) { TokensPerShard = e.TokensPerShard(tokens) };
        })];
    }

    private void Allocate(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (_device is not null) throw new InvalidOperationException("The model is already materialised.");
        foreach (var (_, module) in named_modules())
            if (module is WeightedModule weighted) weighted.Allocate(device);
        _device = device;
    }

    /// <summary>
    /// Every tensor the checkpoint holds for this model, as the allocated tensor (or view) it goes to:
    /// parameters by name, and each routed expert's matrices as slices of the stacks.
    /// </summary>
    private IEnumerable<(string Name, Tensor Target)> CheckpointTensors()
    {
        foreach (var (prefix, module) in named_modules())
        {
            if (module is RoutedExperts experts)
                foreach (var slice in experts.CheckpointSlices(prefix)) yield return slice;
            else if (module is WeightedModule)
                foreach (var (name, parameter) in module.named_parameters(recurse: false)) yield return ($"{prefix}.{name}", parameter);
        }
    }

    /// <summary>FNV-1a of the name, mixed with the seed: stable across runs and processes, unlike string.GetHashCode.</summary>
    private static ulong TensorSeed(long seed, string name)
    {
        var hash = 14695981039346656037UL ^ unchecked((ulong)seed);
        foreach (var c in name) hash = (hash ^ c) * 1099511628211UL;
        return hash;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _rotary.Dispose();
            Lora?.Dispose();
        }
        base.Dispose(disposing);
    }

    private void CheckBatch(ForwardBatch batch, MlaKvCache cache)
    {
        batch.Validate(Config.VocabSize, cache.SlotCount);
        if (cache.LayerCount != Config.NumHiddenLayers || cache.LatentDimension != Config.KvLoraRank + Config.QkRopeHeadDim)
            throw new ArgumentException("The KV cache was not made for this model (use CreateCache).", nameof(cache));
    }
}

/// <summary>The decoder stack (<c>model.*</c> in the checkpoint): embeddings, layers, final norm.</summary>
internal sealed class DeepSeekModel : nn.Module
{
    private readonly Embedding embed_tokens;
    private readonly ModuleList<DecoderLayer> layers;
    private readonly RmsNorm norm;

    public DeepSeekModel(string name, DeepSeekConfig config, ScalarType dtype) : base(name)
    {
        embed_tokens = new Embedding(nameof(embed_tokens), config.VocabSize, config.HiddenSize, dtype);
        layers = new ModuleList<DecoderLayer>([.. Enumerable.Range(0, config.NumHiddenLayers).Select(i => new DecoderLayer(i, config, dtype))]);
        norm = new RmsNorm(nameof(norm), config.HiddenSize, config.RmsNormEps, dtype);
        RoutedExperts = [.. layers.Select(l => l.Moe?.Experts).OfType<RoutedExperts>()];
        RegisterComponents();
    }

    public IReadOnlyList<RoutedExperts> RoutedExperts { get; }

    /// <summary>Hidden states after the last layer, before the final norm, and each MoE layer's counts per expert (on the device).</summary>
    public (Tensor Hidden, IReadOnlyList<(int Layer, Tensor Counts)> Counts) Forward(Tensor tokenIds, AttentionMetadata batch, MlaKvCache cache)
    {
        var hidden = embed_tokens.Forward(tokenIds);
        var counts = new List<(int, Tensor)>();
        for (var i = 0; i < layers.Count; i++)
        {
            // A layer's temporaries are freed when it ends, not when the forward does.
            using var layerScope = NewDisposeScope();
            var (output, layerCounts) = layers[i].Forward(hidden, batch, cache.Layer(i));
            hidden = output.MoveToOuterDisposeScope();
            if (layerCounts is not null) counts.Add((i, layerCounts.MoveToOuterDisposeScope()));
        }
        return (hidden, counts);
    }

    public Tensor Norm(Tensor hidden) => norm.Forward(hidden);
}

/// <summary>Pre-norm transformer block: <c>x + attn(norm(x))</c>, then <c>x + mlp(norm(x))</c>.</summary>
internal sealed class DecoderLayer : nn.Module
{
    private readonly RmsNorm input_layernorm;
    private readonly MlaAttention self_attn;
    private readonly RmsNorm post_attention_layernorm;
    private readonly nn.Module mlp;

    public DecoderLayer(int layerIndex, DeepSeekConfig config, ScalarType dtype) : base(layerIndex.ToString(CultureInfo.InvariantCulture))
    {
        input_layernorm = new RmsNorm(nameof(input_layernorm), config.HiddenSize, config.RmsNormEps, dtype);
        self_attn = new MlaAttention(nameof(self_attn), config, dtype);
        post_attention_layernorm = new RmsNorm(nameof(post_attention_layernorm), config.HiddenSize, config.RmsNormEps, dtype);
        mlp = config.IsMoeLayer(layerIndex)
            ? new Moe(nameof(mlp), layerIndex, config, dtype)
            : new Mlp(nameof(mlp), config.HiddenSize, config.IntermediateSize, dtype);
        RegisterComponents();
    }

    public Moe? Moe => mlp as Moe;

    /// <returns>The layer's output and, for a MoE layer, its pairs per expert.</returns>
    public (Tensor Hidden, Tensor? Counts) Forward(Tensor hidden, AttentionMetadata batch, Tensor cache)
    {
        (mlp as Moe)?.Experts.PrepareFor(hidden.shape[0]);
        var attended = hidden.Plus(self_attn.Forward(input_layernorm.Forward(hidden), batch, cache));
        var normed = post_attention_layernorm.Forward(attended);
        if (mlp is Moe moe)
        {
            var (routed, counts) = moe.Forward(normed, batch.CountedRows);
            return (attended.Plus(routed), counts);
        }
        return (attended.Plus(((Mlp)mlp).Forward(normed)), null);
    }
}

/// <summary>
/// Multi-head latent attention. Each token is compressed to a latent <c>c</c> (after
/// <c>kv_a_layernorm</c>) plus one shared roped key part; both go to the <see cref="MlaKvCache"/>.
/// <c>kv_b_proj</c> is absorbed rather than expanded: queries are mapped into latent space
/// (<c>q·W_UK</c>), scores are taken against cached latents, and the weighted latent sum is mapped
/// out by <c>W_UV</c>. A decode step therefore reads the cache once and never re-expands past
/// tokens into per-head K and V, so one new token costs one token of work plus one pass over its context.
/// </summary>
internal sealed class MlaAttention : nn.Module
{
    private readonly Linear? q_proj;
    private readonly Linear? q_a_proj;
    private readonly RmsNorm? q_a_layernorm;
    private readonly Linear? q_b_proj;
    private readonly Linear kv_a_proj_with_mqa;
    private readonly RmsNorm kv_a_layernorm;
    private readonly Linear kv_b_proj;
    private readonly Linear o_proj;
    private readonly int _heads, _nope, _rope, _value, _latent;
    private readonly double _scale;
    // Held for the module's life: the per-step products take no temporary Scalar (HeldScalars says why).
    private readonly Scalar _scoreScale;
    private readonly Scalar _queryScale;

    public MlaAttention(string name, DeepSeekConfig config, ScalarType dtype) : base(name)
    {
        (_heads, _nope, _rope, _value, _latent, _scale) =
            (config.NumAttentionHeads, config.QkNopeHeadDim, config.QkRopeHeadDim, config.VHeadDim, config.KvLoraRank, config.SoftmaxScale);
        _scoreScale = _scale.ToScalar();
        // SDPA scales by 1/sqrt(head dim); DeepSeek's scale (YaRN mscale included) is folded into the queries.
        _queryScale = (_scale * Math.Sqrt(_nope + _rope)).ToScalar();
        var hidden = config.HiddenSize;
        var bias = config.AttentionBias;
        if (config.QLoraRank is { } qRank)
        {
            q_a_proj = new Linear(nameof(q_a_proj), hidden, qRank, bias, dtype);
            q_a_layernorm = new RmsNorm(nameof(q_a_layernorm), qRank, config.RmsNormEps, dtype);
            q_b_proj = new Linear(nameof(q_b_proj), qRank, _heads * config.QkHeadDim, false, dtype);
        }
        else
        {
            q_proj = new Linear(nameof(q_proj), hidden, _heads * config.QkHeadDim, false, dtype);
        }
        kv_a_proj_with_mqa = new Linear(nameof(kv_a_proj_with_mqa), hidden, _latent + _rope, bias, dtype);
        kv_a_layernorm = new RmsNorm(nameof(kv_a_layernorm), _latent, config.RmsNormEps, dtype);
        kv_b_proj = new Linear(nameof(kv_b_proj), _latent, _heads * (_nope + _value), false, dtype);
        o_proj = new Linear(nameof(o_proj), _heads * _value, hidden, bias, dtype);
        RegisterComponents();
    }

    /// <param name="hidden"><c>[T, hidden]</c>, already normalised.</param>
    /// <param name="batch">Per-forward metadata shared by all layers.</param>
    /// <param name="cache">This layer's <c>[slots, kv_lora_rank + qk_rope_head_dim]</c> cache.</param>
    public Tensor Forward(Tensor hidden, AttentionMetadata batch, Tensor cache)
    {
        // The scores are the largest temporaries of a layer; free them before the MLP runs.
        using var scope = NewDisposeScope();
        var tokens = hidden.shape[0];
        var q = q_proj is not null
            ? q_proj.Forward(hidden)
            : q_b_proj!.Forward(q_a_layernorm!.Forward(q_a_proj!.Forward(hidden)));
        q = q.view(tokens, _heads, _nope + _rope);
        var qNope = q.narrow(-1, 0, _nope);
        var qRope = batch.Rotary.Apply(q.narrow(-1, _nope, _rope));

        var compressed = kv_a_proj_with_mqa.Forward(hidden);
        var latent = kv_a_layernorm.Forward(compressed.narrow(-1, 0, _latent));
        var kRope = batch.Rotary.Apply(compressed.narrow(-1, _latent, _rope).unsqueeze(1)).squeeze(1);
        cache.index_copy_(0, batch.SlotMapping, cat([latent, kRope], -1));

        Tensor values;
        if (batch.Varlen is { } varlen)
        {
            values = PackedAttention(qNope, qRope, cache.index_select(0, varlen.ContextSlots), varlen);
        }
        else
        {
            var context = cache.index_select(0, batch.ContextSlots!).view(batch.SequenceCount, batch.MaxContext, _latent + _rope);
            values = batch.Form == AttentionForm.Expanded
                ? ExpandedAttention(qNope, qRope, context, batch)
                : AbsorbedAttention(qNope, qRope, context, batch);
        }
        return o_proj.Forward(values.reshape(tokens, _heads * _value)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Decode form: queries absorbed into the latent space (W_UK), scores against the cached latent,
    /// values taken from the latent and expanded once per token afterwards (W_UV). Reads 576 values per
    /// context token instead of heads × 320, but its score matrix is materialised.
    /// </summary>
    private Tensor AbsorbedAttention(Tensor qNope, Tensor qRope, Tensor context, AttentionMetadata batch)
    {
        // kv_b_proj.weight is [heads · (nope + v), latent]: per head W_UK [nope, latent] and W_UV [v, latent].
        var wkv = kv_b_proj.Weight.view(_heads, _nope + _value, _latent);
        var wUk = wkv.narrow(1, 0, _nope);
        var wUv = wkv.narrow(1, _nope, _value);
        var qLatent = bmm(qNope.transpose(0, 1), wUk).transpose(0, 1);          // [T, H, latent]
        var query = cat([qLatent, qRope], -1);                                       // [T, H, latent + rope]
        var s = batch.SequenceCount;
        var paddedQuery = (batch.QueryRows is { } rows ? query.index_select(0, rows) : query).view(s, batch.MaxQueries * _heads, _latent + _rope);
        var scores = bmm(paddedQuery, context.transpose(1, 2)).mul_(_scoreScale)
            .view(s, batch.MaxQueries, _heads, batch.MaxContext)
            .masked_fill(batch.Masked!, HeldScalars.NegativeInfinity);
        var probabilities = scores.dtype is ScalarType.Float16 or ScalarType.BFloat16
            ? scores.softmax(-1, ScalarType.Float32).to(scores.dtype)
            : scores.softmax(-1);
        var attended = bmm(probabilities.view(s, batch.MaxQueries * _heads, batch.MaxContext), context.narrow(-1, 0, _latent))
            .view(s * batch.MaxQueries, _heads, _latent);
        if (batch.UnpadRows is { } unpad) attended = attended.index_select(0, unpad);  // [T, H, latent]
        return bmm(attended.transpose(0, 1), wUv.transpose(1, 2)).transpose(0, 1);  // [T, H, v]
    }

    /// <summary>
    /// Prefill form: per-head keys and values expanded from the cached latent (kv_b_proj), then
    /// PyTorch's fused scaled-dot-product attention, which never materialises the score matrix on
    /// CUDA (flash when every sequence is a fresh prompt of one length, so the causal mask is the
    /// plain triangle; memory-efficient with the step's mask otherwise). Memory grows with the chunk and
    /// the context, not with their product.
    /// </summary>
    private Tensor ExpandedAttention(Tensor qNope, Tensor qRope, Tensor context, AttentionMetadata batch)
    {
        var s = batch.SequenceCount;
        var kv = kv_b_proj.Forward(context.narrow(-1, 0, _latent)).view(s, batch.MaxContext, _heads, _nope + _value);
        var keys = cat([kv.narrow(-1, 0, _nope),
            context.narrow(-1, _latent, _rope).unsqueeze(2).expand(s, batch.MaxContext, _heads, _rope)], -1).transpose(1, 2);
        var values = kv.narrow(-1, _nope, _value).transpose(1, 2);                  // [s, H, C, v]
        var headDim = _nope + _rope;
        var scaled = cat([qNope, qRope], -1).mul(_queryScale);
        var queries = (batch.QueryRows is { } rows ? scaled.index_select(0, rows) : scaled).view(s, batch.MaxQueries, _heads, headDim).transpose(1, 2);
        var attended = batch.IsFreshCausal
            ? nn.functional.scaled_dot_product_attention(queries, keys, values, null, 0.0, true)
            : nn.functional.scaled_dot_product_attention(queries, keys, values, batch.Masked!.squeeze(2).logical_not().unsqueeze(1), 0.0, false);
        var unpadded = attended.transpose(1, 2).reshape(s * batch.MaxQueries, _heads, _value);
        return batch.UnpadRows is { } unpad ? unpadded.index_select(0, unpad) : unpadded;  // [T, H, v]
    }

    /// <summary>
    /// The prefill form over packed sequences (<see cref="VarlenAttention"/>: FlashAttention-2's varlen
    /// kernel on CUDA, v padded to q·k's head dim for it): keys and values expanded from each sequence's
    /// own context only (not padded to the longest), queries packed without padding, and the causal rule
    /// aligned bottom-right instead of a mask, so a chunk after cached context, a fresh prompt and a decode
    /// row share one call and nothing grows with chunk × context. DeepSeek's scale goes to the kernel.
    /// </summary>
    private Tensor PackedAttention(Tensor qNope, Tensor qRope, Tensor context, VarlenAttention varlen)
    {
        var total = context.shape[0];
        var kv = kv_b_proj.Forward(context.narrow(-1, 0, _latent)).view(total, _heads, _nope + _value);
        var keys = cat([kv.narrow(-1, 0, _nope), context.narrow(-1, _latent, _rope).unsqueeze(1).expand(total, _heads, _rope)], -1);
        var values = kv.narrow(-1, _nope, _value);                                    // [C, H, v], a view
        var query = cat([qNope, qRope], -1);                                          // [T, H, nope + rope]
        if (varlen.QueryRows is { } rows) query = query.index_select(0, rows);
        var attended = varlen.Attend(query, keys, values, _scale);
        return varlen.UnpackRows is { } unpack ? attended.index_select(0, unpack) : attended;  // [T, H, v]
    }
}

/// <summary>
/// A mixture-of-experts MLP: shared experts on every token plus the routed experts the
/// <see cref="MoeGate"/> picks. Where the routed experts are computed is <see cref="RoutedExperts"/>'
/// business (here, or on other ranks after a placement pass); this layer does not know.
/// </summary>
internal sealed class Moe : nn.Module
{
    private readonly MoeGate gate;
    private readonly RoutedExperts experts;
    private readonly Mlp? shared_experts;
    private readonly int _expertCount;

    public Moe(string name, int layerIndex, DeepSeekConfig config, ScalarType dtype) : base(name)
    {
        _expertCount = config.NRoutedExperts;
        gate = new MoeGate(nameof(gate), config, dtype);
        experts = new RoutedExperts(nameof(experts), layerIndex, config.NRoutedExperts, config.NumExpertsPerTok, config.HiddenSize, config.MoeIntermediateSize, dtype);
        if (config.NSharedExperts > 0)
            shared_experts = new Mlp(nameof(shared_experts), config.HiddenSize, (long)config.MoeIntermediateSize * config.NSharedExperts, dtype);
        RegisterComponents();
    }

    public RoutedExperts Experts => experts;

    /// <remarks><c>countedRows</c>: 1 for the rows whose picks are counted in the result, 0 for padding; null counts every row.</remarks>
    /// <returns>The layer's output and the (token, slot) pairs each expert received, <c>[n_routed_experts]</c> on the device.</returns>
    public (Tensor Output, Tensor Counts) Forward(Tensor hidden, Tensor? countedRows = null)
    {
        var (ids, weights) = gate.Forward(hidden);
        var flatIds = ids.reshape(-1);
        // Not bincount: on CUDA it reads the largest id back to size its output (a synchronisation).
        var counts = zeros([_expertCount], ScalarType.Int64, hidden.device).scatter_add_(0, flatIds, ones_like(flatIds));
        var routed = experts.Forward(hidden, ids, weights, counts);
        // The experts compute every row's picks (padding included); the load reported leaves padding out.
        var reported = countedRows is null ? counts
            : zeros([_expertCount], ScalarType.Int64, hidden.device).scatter_add_(0, flatIds, countedRows.unsqueeze(1).expand(ids.shape).reshape(-1));
        return (shared_experts is null ? routed : routed.Plus(shared_experts.Forward(hidden)), reported);
    }
}

/// <summary>
/// The router (<c>mlp.gate</c>): scores every routed expert per token and picks the top k.
/// V2: softmax scores, greedy (or group-limited greedy) top-k. V3: sigmoid scores, selection on
/// scores + <c>e_score_correction_bias</c> restricted to the best <c>topk_group</c> of
/// <c>n_group</c> groups (each group scored by its two best experts), weights from the unbiased
/// scores. Then optional renormalisation and <c>routed_scaling_factor</c>. Routing runs in float32
/// (float64 for a float64 model) whatever the model dtype, as transformers does.
/// </summary>
internal sealed class MoeGate : WeightedModule
{
    private Parameter weight;
    private Parameter? e_score_correction_bias;
    private readonly DeepSeekConfig _config;
    private readonly ScalarType _routingType;
    private readonly Scalar _routedScaling;
    private static readonly Scalar TinyWeightSum = 1e-20.ToScalar();

    public MoeGate(string name, DeepSeekConfig config, ScalarType dtype) : base(name)
    {
        _config = config;
        _routingType = dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        _routedScaling = config.RoutedScalingFactor.ToScalar();
        weight = Declare(_routingType, config.NRoutedExperts, config.HiddenSize);
        if (config.TopkMethod == "noaux_tc") e_score_correction_bias = Declare(_routingType, config.NRoutedExperts);
        RegisterComponents();
    }

    internal override void Allocate(Device device)
    {
        weight = Allocated(nameof(weight), weight, device);
        if (e_score_correction_bias is not null) e_score_correction_bias = Allocated(nameof(e_score_correction_bias), e_score_correction_bias, device);
    }

    public (Tensor ExpertIds, Tensor Weights) Forward(Tensor hidden)
    {
        var c = _config;
        var tokens = hidden.shape[0];
        var logits = nn.functional.linear(hidden.to(_routingType), weight);
        var scores = c.ScoringFunc == "sigmoid" ? logits.sigmoid() : logits.softmax(-1);
        var groupSize = c.NRoutedExperts / c.NGroup;

        Tensor ids, weights;
        switch (c.TopkMethod)
        {
            case "noaux_tc":
            {
                var choice = scores.Plus(e_score_correction_bias!);
                var groupScores = choice.view(tokens, c.NGroup, groupSize).topk(2, -1).values.sum(-1);
                var candidates = MaskToBestGroups(choice, groupScores, tokens, groupSize);
                ids = candidates.topk(c.NumExpertsPerTok, -1, largest: true, sorted: false).indexes;
                weights = scores.gather(1, ids);
                break;
            }
            case "group_limited_greedy":
            {
                var groupScores = scores.view(tokens, c.NGroup, groupSize).max(-1).values;
                var candidates = MaskToBestGroups(scores, groupScores, tokens, groupSize);
                (weights, ids) = candidates.topk(c.NumExpertsPerTok, -1, largest: true, sorted: false);
                break;
            }
            default:
                (weights, ids) = scores.topk(c.NumExpertsPerTok, -1, largest: true, sorted: false);
                break;
        }
        if (c.NormTopkProb) weights = weights / weights.sum(-1, keepdim: true).Plus(TinyWeightSum);
        return (ids, (weights * _routedScaling).to(hidden.dtype));
    }

    /// <summary>Zeroes (as the reference does, not −∞) every expert outside the best topk_group groups.</summary>
    private Tensor MaskToBestGroups(Tensor scores, Tensor groupScores, long tokens, long groupSize)
    {
        var best = groupScores.topk(_config.TopkGroup, -1, largest: true, sorted: false).indexes;
        var groupMask = zeros_like(groupScores).scatter_(1, best, ones_like(best, dtype: groupScores.dtype));
        var expertMask = groupMask.unsqueeze(-1).expand(tokens, _config.NGroup, groupSize).reshape(tokens, _config.NRoutedExperts);
        return scores.masked_fill(expertMask.eq(HeldScalars.Zero), HeldScalars.ZeroReal);
    }
}

/// <summary>SwiGLU MLP <c>down(silu(gate(x)) · up(x))</c>: the dense layers and the shared experts.</summary>
internal sealed class Mlp : nn.Module
{
    private readonly Linear gate_proj;
    private readonly Linear up_proj;
    private readonly Linear down_proj;

    public Mlp(string name, long hiddenSize, long intermediateSize, ScalarType dtype) : base(name)
    {
        gate_proj = new Linear(nameof(gate_proj), hiddenSize, intermediateSize, false, dtype);
        up_proj = new Linear(nameof(up_proj), hiddenSize, intermediateSize, false, dtype);
        down_proj = new Linear(nameof(down_proj), intermediateSize, hiddenSize, false, dtype);
        RegisterComponents();
    }

    public Tensor Forward(Tensor input) => down_proj.Forward(nn.functional.silu(gate_proj.Forward(input)) * up_proj.Forward(input));
}

/// <summary>The token embedding table (<c>embed_tokens.weight</c>).</summary>
internal sealed class Embedding : WeightedModule
{
    private Parameter weight;

    public Embedding(string name, long vocabSize, long hiddenSize, ScalarType dtype) : base(name)
    {
        weight = Declare(dtype, vocabSize, hiddenSize);
        RegisterComponents();
    }

    internal override void Allocate(Device device) => weight = Allocated(nameof(weight), weight, device);

    public Tensor Forward(Tensor tokenIds) => weight.index_select(0, tokenIds);
}
