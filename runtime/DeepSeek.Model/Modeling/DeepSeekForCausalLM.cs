using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// A DeepSeek-V2/V3 causal language model over flattened <c>[tokens, hidden]</c> batches with
/// explicit positions and KV-cache slots (see <see cref="ForwardBatch"/>). Field names equal the
/// checkpoint's tensor names, so weights load by state-dict name.
/// </summary>
public sealed class DeepSeekForCausalLM : nn.Module
{
    private readonly DeepSeekModel model;
    private readonly Projection lm_head;
    private readonly RotaryEmbedding _rotary;

    public DeepSeekConfig Config { get; }

    public ScalarType DType { get; }

    public Device Device { get; }

    public DeepSeekForCausalLM(DeepSeekConfig config, ScalarType dtype, Device device, ExpertPlacement? placement = null, int rank = 0)
        : base(nameof(DeepSeekForCausalLM))
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64))
            throw new ArgumentException($"dtype {dtype} is not supported; use float32, bfloat16, float16 or float64.", nameof(dtype));
        Config = config;
        DType = dtype;
        Device = device;
        _rotary = new RotaryEmbedding(config);
        model = new DeepSeekModel(nameof(model), config, placement ?? ExpertPlacement.AllLocal(config.NRoutedExperts), rank, dtype, device);
        lm_head = new Projection(nameof(lm_head), config.HiddenSize, config.VocabSize, false, dtype, device);
        RegisterComponents();
    }

    /// <summary>Builds the model and fills every parameter and buffer from the folder's safetensors.</summary>
    public static DeepSeekForCausalLM Load(string directory, ScalarType dtype, Device device, ExpertPlacement? placement = null, int rank = 0)
    {
        var config = DeepSeekConfig.Load(directory);
        using var checkpoint = SafetensorsCheckpoint.Open(directory);
        var result = new DeepSeekForCausalLM(config, dtype, device, placement, rank);
        try
        {
            result.LoadWeights(checkpoint);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A model of <paramref name="config"/>'s shape without a checkpoint, for benchmarks: weights
    /// drawn from normal(0, 0.02), norm weights 1, other buffers as constructed. Same seed, same weights.
    /// </summary>
    public static DeepSeekForCausalLM CreateRandom(DeepSeekConfig config, ScalarType dtype, Device device, long seed, ExpertPlacement? placement = null, int rank = 0)
    {
        ArgumentNullException.ThrowIfNull(config);
        var result = new DeepSeekForCausalLM(config, dtype, device, placement, rank);
        using var noGrad = no_grad();
        // TorchSharp's Generator is a CPU generator whatever device it is given, and CUDA kernels
        // refuse it; on CUDA seed the device's default generator instead.
        using var generator = device.type == DeviceType.CPU ? new Generator(unchecked((ulong)seed), device) : null;
        if (generator is null) cuda.manual_seed(seed);
        foreach (var (name, parameter) in result.named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) parameter.fill_(1.0);
            else parameter.normal_(0.0, 0.02, generator);
        }
        return result;
    }

    public void LoadWeights(SafetensorsCheckpoint checkpoint)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        // Routed experts are stored stacked; each checkpoint tensor (one per expert and matrix) is
        // copied into its slice of the stack.
        var stacks = named_modules().Where(m => m.module is StackedExperts).ToList();
        var targets = named_parameters().Select(p => (p.name, (Tensor)p.parameter))
            .Concat(named_buffers().Select(b => (b.name, b.buffer)))
            .Where(t => !stacks.Any(s => t.name.StartsWith(s.name + ".", StringComparison.Ordinal)))
            .Concat(stacks.SelectMany(s => ((StackedExperts)s.module).CheckpointSlices(s.name)));
        foreach (var (name, target) in targets)
        {
            // Tied embeddings: a checkpoint may omit lm_head.weight and reuse the embedding table.
            var source = name == "lm_head.weight" && Config.TieWordEmbeddings && !checkpoint.Contains(name) ? "model.embed_tokens.weight" : name;
            using var loaded = checkpoint.Load(source, target.shape, target.dtype, target.device);
            target.copy_(loaded);
        }
    }

    public IReadOnlyList<DecoderLayer> Layers => model.Layers;

    public IEnumerable<MoeLayer> MoeLayers => model.Layers.Select(l => l.Moe).OfType<MoeLayer>();

    /// <summary>A cache of <paramref name="slotCount"/> token slots sized for this model.</summary>
    public MlaKvCache CreateCache(long slotCount) =>
        new(Config.NumHiddenLayers, slotCount, Config.KvLoraRank + Config.QkRopeHeadDim, DType, Device);

    /// <summary>
    /// Runs one step: writes every token's latent to its slot, attends over each sequence's context
    /// slots, and returns logits for the rows <see cref="ForwardBatch.Logits"/> selects.
    /// </summary>
    public ForwardOutput Forward(ForwardBatch batch, MlaKvCache cache)
    {
        CheckBatch(batch, cache);

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var metadata = AttentionMetadata.Build(batch, _rotary, DType, Device);
        var tokenIds = tensor(batch.TokenIds, device: Device);
        var hidden = model.forward(tokenIds, metadata, cache);
        if (batch.Logits == LogitsSelection.LastTokenOfEachSequence)
        {
            var rows = batch.Sequences.Select(s => (long)(s.Start + s.Length - 1)).ToArray();
            hidden = hidden.index_select(0, tensor(rows, device: Device));
        }
        var logits = lm_head.forward(model.Norm(hidden));
        var loads = MoeLayer.CollectLoads(MoeLayers);
        return new ForwardOutput(logits.MoveToOuterDisposeScope(), loads);
    }

    /// <summary>
    /// Final hidden states (after the final norm, before the LM head) of every token of the batch,
    /// <c>[tokens, hidden]</c>; the caller owns them. What embeddings are made of.
    /// </summary>
    public Tensor FinalHiddenStates(ForwardBatch batch, MlaKvCache cache)
    {
        CheckBatch(batch, cache);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var metadata = AttentionMetadata.Build(batch, _rotary, DType, Device);
        var hidden = model.forward(tensor(batch.TokenIds, device: Device), metadata, cache);
        return model.Norm(hidden).MoveToOuterDisposeScope();
    }

    private void CheckBatch(ForwardBatch batch, MlaKvCache cache)
    {
        batch.Validate(Config.VocabSize, cache.SlotCount);
        if (cache.LayerCount != Config.NumHiddenLayers || cache.LatentDimension != Config.KvLoraRank + Config.QkRopeHeadDim)
            throw new ArgumentException("The KV cache was not made for this model (use CreateCache).", nameof(cache));
    }
}
