using System.Text.Json;

namespace DeepSeek.Model.Configuration;

/// <summary>
/// The architecture of a DeepSeek-V2/V3 checkpoint, read from its config.json in either key style:
/// the model hub's (<c>rope_theta</c>, <c>rope_scaling</c>, <c>scoring_func</c>, <c>topk_method</c>)
/// or transformers 5's (<c>rope_parameters</c>; routing implied by <c>model_type</c>).
/// </summary>
public sealed record DeepSeekConfig
{
    public required string ModelType { get; init; }
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int MoeIntermediateSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    public int? QLoraRank { get; init; }
    public required int KvLoraRank { get; init; }
    public required int QkNopeHeadDim { get; init; }
    public required int QkRopeHeadDim { get; init; }
    public required int VHeadDim { get; init; }
    public required int NRoutedExperts { get; init; }
    public required int NSharedExperts { get; init; }
    public required int NumExpertsPerTok { get; init; }
    public required int FirstKDenseReplace { get; init; }
    public int MoeLayerFreq { get; init; } = 1;
    public int NGroup { get; init; } = 1;
    public int TopkGroup { get; init; } = 1;
    public required string ScoringFunc { get; init; }
    public required string TopkMethod { get; init; }
    public bool NormTopkProb { get; init; }
    public double RoutedScalingFactor { get; init; } = 1.0;
    public double RmsNormEps { get; init; } = 1e-6;
    public int MaxPositionEmbeddings { get; init; } = 4096;
    public required RopeScaling Rope { get; init; }
    public bool AttentionBias { get; init; }
    public bool TieWordEmbeddings { get; init; }
    public int? BosTokenId { get; init; }
    public int? EosTokenId { get; init; }

    /// <summary>The checkpoint's <c>quantization_config</c>: null for an unquantised checkpoint.</summary>
    public Fp8BlockQuantization? Quantization { get; init; }

    public int QkHeadDim => QkNopeHeadDim + QkRopeHeadDim;

    /// <summary>Layer <paramref name="layer"/> uses routed experts (else a dense MLP), as HF decides it.</summary>
    public bool IsMoeLayer(int layer) => NRoutedExperts > 0 && layer >= FirstKDenseReplace && layer % MoeLayerFreq == 0;

    /// <summary>
    /// Softmax scale of attention: <c>1/√qk_head_dim</c>, times <c>mscale(factor, mscale_all_dim)²</c>
    /// under YaRN (DeepSeek's correction for the longer context).
    /// </summary>
    public double SoftmaxScale
    {
        get
        {
            var scale = 1.0 / Math.Sqrt(QkHeadDim);
            if (Rope.Type != "default" && Rope.MscaleAllDim != 0)
            {
                var m = RopeScaling.YarnMscale(Rope.Factor, Rope.MscaleAllDim);
                scale *= m * m;
            }
            return scale;
        }
    }

    public static DeepSeekConfig Load(string directory)
    {
        var path = Path.Combine(directory, "config.json");
        if (!File.Exists(path)) throw new ConfigException($"{directory}: no config.json; is this a Hugging Face checkpoint folder?");
        return Parse(File.ReadAllText(path));
    }

    public static DeepSeekConfig Parse(string json)
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new ConfigException($"config.json is not valid JSON: {e.Message}", e); }
        using (document)
        {
            var reader = new ConfigReader(document.RootElement);
            var config = Read(reader);
            config.Validate();
            return config;
        }
    }

    private static DeepSeekConfig Read(ConfigReader c)
    {
        var modelType = c.String("model_type") ?? throw new ConfigException("config.json: \"model_type\" is missing; expected \"deepseek_v2\" or \"deepseek_v3\".");
        if (modelType is not ("deepseek_v2" or "deepseek_v3"))
            throw new ConfigException($"config.json: \"model_type\" is \"{modelType}\"; this runtime runs \"deepseek_v2\" and \"deepseek_v3\".");
        var isV3 = modelType == "deepseek_v3";
        var numHeads = c.RequiredInt("num_attention_heads");
        var nRouted = c.Int("n_routed_experts") ?? 0;
        return new DeepSeekConfig
        {
            ModelType = modelType,
            VocabSize = c.RequiredInt("vocab_size"),
            HiddenSize = c.RequiredInt("hidden_size"),
            IntermediateSize = c.RequiredInt("intermediate_size"),
            MoeIntermediateSize = c.Int("moe_intermediate_size") ?? 0,
            NumHiddenLayers = c.RequiredInt("num_hidden_layers"),
            NumAttentionHeads = numHeads,
            QLoraRank = c.Int("q_lora_rank"),
            KvLoraRank = c.RequiredInt("kv_lora_rank"),
            QkNopeHeadDim = c.RequiredInt("qk_nope_head_dim"),
            QkRopeHeadDim = c.RequiredInt("qk_rope_head_dim"),
            VHeadDim = c.RequiredInt("v_head_dim"),
            NRoutedExperts = nRouted,
            NSharedExperts = c.Int("n_shared_experts") ?? 0,
            NumExpertsPerTok = c.Int("num_experts_per_tok") ?? 0,
            FirstKDenseReplace = c.Int("first_k_dense_replace") ?? 0,
            MoeLayerFreq = c.Int("moe_layer_freq") ?? 1,
            NGroup = c.Int("n_group") ?? 1,
            TopkGroup = c.Int("topk_group") ?? 1,
            // transformers 5 drops these keys: its V3 always routes sigmoid/noaux_tc, its V2 softmax.
            ScoringFunc = c.String("scoring_func") ?? (isV3 ? "sigmoid" : "softmax"),
            TopkMethod = c.String("topk_method") ?? (isV3 ? "noaux_tc" : "greedy"),
            NormTopkProb = c.Bool("norm_topk_prob") ?? isV3,
            RoutedScalingFactor = c.Double("routed_scaling_factor") ?? 1.0,
            RmsNormEps = c.Double("rms_norm_eps") ?? 1e-6,
            MaxPositionEmbeddings = c.Int("max_position_embeddings") ?? 4096,
            Rope = ReadRope(c),
            AttentionBias = c.Bool("attention_bias") ?? false,
            TieWordEmbeddings = c.Bool("tie_word_embeddings") ?? false,
            BosTokenId = c.Int("bos_token_id"),
            EosTokenId = c.FirstInt("eos_token_id"),
            Quantization = ReadQuantization(c.Object("quantization_config")),
        };
    }

    /// <summary>Block-scaled FP8 as published; any other scheme is refused with what is supported.</summary>
    private static Fp8BlockQuantization? ReadQuantization(ConfigReader? q)
    {
        if (q is null) return null;
        static ConfigException Refuse(string what) =>
            new($"config.json: quantization_config {what} is not supported; this runtime reads {Fp8BlockQuantization.Supported}.");
        var method = q.String("quant_method") ?? throw Refuse("without \"quant_method\"");
        if (method != Fp8BlockQuantization.Method) throw Refuse($"quant_method \"{method}\"");
        var format = q.String("fmt") ?? "e4m3";
        if (format != "e4m3") throw Refuse($"fmt \"{format}\"");
        var activations = q.String("activation_scheme") ?? "dynamic";
        if (activations != "dynamic") throw Refuse($"activation_scheme \"{activations}\"");
        var block = q.IntArray("weight_block_size") ?? throw Refuse("without \"weight_block_size\" (per-tensor FP8)");
        if (block is not [128, 128]) throw Refuse($"weight_block_size [{string.Join(", ", block)}]");
        return new Fp8BlockQuantization(format, activations, block[0], block[1]);
    }

    private static RopeScaling ReadRope(ConfigReader c)
    {
        var parameters = c.Object("rope_parameters");
        var scaling = c.Object("rope_scaling");
        if (parameters is not null && scaling is not null)
            throw new ConfigException("config.json has both \"rope_parameters\" (transformers 5) and \"rope_scaling\" (hub style); keep one.");
        var source = parameters ?? scaling;
        var theta = (parameters?.Double("rope_theta")) ?? c.Double("rope_theta") ?? 10000.0;
        if (source is null) return new RopeScaling("default", theta);
        var key = parameters is null ? "rope_scaling" : "rope_parameters";
        var type = source.String("rope_type") ?? source.String("type") ?? "default";
        if (type is not ("default" or "yarn"))
            throw new ConfigException($"config.json: {key}.type \"{type}\" is not supported; DeepSeek models use \"yarn\" or none.");
        if (type == "default") return new RopeScaling("default", theta);
        return new RopeScaling(
            Type: "yarn",
            Theta: theta,
            Factor: source.Double("factor") ?? throw new ConfigException($"config.json: {key}.factor is required for yarn."),
            OriginalMaxPositionEmbeddings: source.Int("original_max_position_embeddings"),
            BetaFast: source.Double("beta_fast") ?? 32.0,
            BetaSlow: source.Double("beta_slow") ?? 1.0,
            Mscale: source.Double("mscale") ?? 1.0,
            MscaleAllDim: source.Double("mscale_all_dim") ?? 0.0,
            AttentionFactor: source.Double("attention_factor"),
            Truncate: source.Bool("truncate") ?? true);
    }

    /// <summary>Checks that the numbers describe a model this runtime can build; names the key to fix.</summary>
    public void Validate()
    {
        static void Positive(int value, string key)
        {
            if (value <= 0) throw new ConfigException($"config.json: \"{key}\" must be positive, not {value}.");
        }
        Positive(VocabSize, "vocab_size");
        Positive(HiddenSize, "hidden_size");
        Positive(IntermediateSize, "intermediate_size");
        Positive(NumHiddenLayers, "num_hidden_layers");
        Positive(NumAttentionHeads, "num_attention_heads");
        Positive(KvLoraRank, "kv_lora_rank");
        Positive(QkNopeHeadDim, "qk_nope_head_dim");
        Positive(VHeadDim, "v_head_dim");
        Positive(QkRopeHeadDim, "qk_rope_head_dim");
        if (QkRopeHeadDim % 2 != 0) throw new ConfigException($"config.json: \"qk_rope_head_dim\" must be even (rotary pairs), not {QkRopeHeadDim}.");
        if (QLoraRank is <= 0) throw new ConfigException($"config.json: \"q_lora_rank\" must be positive or null, not {QLoraRank}.");
        if (MoeLayerFreq <= 0) throw new ConfigException($"config.json: \"moe_layer_freq\" must be positive, not {MoeLayerFreq}.");
        if (FirstKDenseReplace < 0) throw new ConfigException($"config.json: \"first_k_dense_replace\" must not be negative.");
        if (NRoutedExperts > 0 && FirstKDenseReplace < NumHiddenLayers)
        {
            Positive(MoeIntermediateSize, "moe_intermediate_size");
            Positive(NumExpertsPerTok, "num_experts_per_tok");
            if (NumExpertsPerTok > NRoutedExperts)
                throw new ConfigException($"config.json: \"num_experts_per_tok\" ({NumExpertsPerTok}) exceeds \"n_routed_experts\" ({NRoutedExperts}).");
            if (ScoringFunc is not ("softmax" or "sigmoid"))
                throw new ConfigException($"config.json: \"scoring_func\" \"{ScoringFunc}\" is not supported; use \"softmax\" or \"sigmoid\".");
            if (TopkMethod is not ("greedy" or "group_limited_greedy" or "noaux_tc"))
                throw new ConfigException($"config.json: \"topk_method\" \"{TopkMethod}\" is not supported; use \"greedy\", \"group_limited_greedy\" or \"noaux_tc\".");
            if (TopkMethod != "greedy")
            {
                Positive(NGroup, "n_group");
                if (NRoutedExperts % NGroup != 0)
                    throw new ConfigException($"config.json: \"n_routed_experts\" ({NRoutedExperts}) must be divisible by \"n_group\" ({NGroup}).");
                if (TopkGroup <= 0 || TopkGroup > NGroup)
                    throw new ConfigException($"config.json: \"topk_group\" ({TopkGroup}) must be between 1 and \"n_group\" ({NGroup}).");
                if (TopkMethod == "noaux_tc" && NRoutedExperts / NGroup < 2)
                    throw new ConfigException($"config.json: noaux_tc scores each group by its top two experts; \"n_routed_experts\"/\"n_group\" must be at least 2.");
                if (NumExpertsPerTok > TopkGroup * (NRoutedExperts / NGroup))
                    throw new ConfigException($"config.json: \"num_experts_per_tok\" ({NumExpertsPerTok}) exceeds the experts in \"topk_group\" groups.");
            }
        }
        if (Rope.IsYarn && Rope.Factor <= 0)
            throw new ConfigException($"config.json: rope factor must be positive, not {Rope.Factor}.");
    }

    private sealed class ConfigReader(JsonElement root)
    {
        private JsonElement? Get(string key) =>
            root.TryGetProperty(key, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

        public string? String(string key) => Get(key) is { } v
            ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw Wrong(key, "a string", v)
            : null;

        public int? Int(string key) => Get(key) is { } v
            ? v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : throw Wrong(key, "an integer", v)
            : null;

        /// <summary>eos_token_id may be a list in generation configs; the first is the one that ends text.</summary>
        public int? FirstInt(string key) => Get(key) is { ValueKind: JsonValueKind.Array } array
            ? array.EnumerateArray().Select(e => (int?)e.GetInt32()).FirstOrDefault()
            : Int(key);

        public int[]? IntArray(string key) => Get(key) is { } v
            ? v.ValueKind == JsonValueKind.Array && v.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out _))
                ? [.. v.EnumerateArray().Select(e => e.GetInt32())]
                : throw Wrong(key, "a list of integers", v)
            : null;

        public int RequiredInt(string key) => Int(key) ?? throw new ConfigException($"config.json: \"{key}\" is required.");

        public double? Double(string key) => Get(key) is { } v
            ? v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Wrong(key, "a number", v)
            : null;

        public bool? Bool(string key) => Get(key) is { } v
            ? v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Wrong(key, "true or false", v)
            : null;

        public ConfigReader? Object(string key) => Get(key) is { } v
            ? v.ValueKind == JsonValueKind.Object ? new ConfigReader(v) : throw Wrong(key, "an object", v)
            : null;

        private static ConfigException Wrong(string key, string expected, JsonElement value) =>
            new($"config.json: \"{key}\" must be {expected}, not {value.GetRawText()}.");
    }
}
