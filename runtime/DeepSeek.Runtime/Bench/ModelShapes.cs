using DeepSeek.Model.Configuration;

namespace DeepSeek.Runtime.Bench;

/// <summary>Named model shapes for random-weight benchmarks, so a benchmark needs no download.</summary>
public static class ModelShapes
{
    public static IReadOnlyList<string> Names { get; } = ["tiny", "deepseek-v2-lite", "deepseek-v3"];

    public static DeepSeekConfig Get(string name, string embeddedModelDirectory) => name switch
    {
        // The embedded tiny DeepSeek-V3 test model's shape (3 layers, hidden 64, 8 routed experts).
        "tiny" => DeepSeekConfig.Load(embeddedModelDirectory),
        "deepseek-v2-lite" => DeepSeekConfig.Parse(V2LiteConfig),
        "deepseek-v3" => DeepSeekConfig.Parse(V3Config),
        _ => throw new ArgumentException($"--shape {name} is not known; use one of: {string.Join(", ", Names)}."),
    };

    /// <summary>DeepSeek-V2-Lite's published config.json fields that shape the computation, YaRN context of 163,840 included.</summary>
    private const string V2LiteConfig = """
        {
          "model_type": "deepseek_v2", "vocab_size": 102400, "hidden_size": 2048, "intermediate_size": 10944,
          "moe_intermediate_size": 1408, "num_hidden_layers": 27, "first_k_dense_replace": 1, "moe_layer_freq": 1,
          "n_routed_experts": 64, "n_shared_experts": 2, "num_experts_per_tok": 6, "topk_method": "greedy",
          "scoring_func": "softmax", "norm_topk_prob": false, "routed_scaling_factor": 1.0, "n_group": 1, "topk_group": 1,
          "num_attention_heads": 16, "num_key_value_heads": 16, "q_lora_rank": null, "kv_lora_rank": 512,
          "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128, "max_position_embeddings": 163840,
          "rope_scaling": { "type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1,
                            "mscale": 0.707, "mscale_all_dim": 0.707 },
          "rms_norm_eps": 1e-6, "rope_theta": 10000, "tie_word_embeddings": false, "bos_token_id": 100000, "eos_token_id": 100001
        }
        """;

    /// <summary>
    /// DeepSeek-V3's (and R1's) published config.json fields that shape the computation: 61 layers, the first
    /// three dense, 256 routed experts of which 8 are active, MLA with q rank 1536. 671 B parameters, so a
    /// benchmark keeps a few layers (<c>--layers</c>); without <c>quantization_config</c>, so its random
    /// weights are bf16 and <c>--quantization fp8</c> makes them FP8-resident in the published blocks.
    /// </summary>
    private const string V3Config = """
        {
          "model_type": "deepseek_v3", "vocab_size": 129280, "hidden_size": 7168, "intermediate_size": 18432,
          "moe_intermediate_size": 2048, "num_hidden_layers": 61, "first_k_dense_replace": 3, "moe_layer_freq": 1,
          "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8, "topk_method": "noaux_tc",
          "scoring_func": "sigmoid", "norm_topk_prob": true, "routed_scaling_factor": 2.5, "n_group": 8, "topk_group": 4,
          "num_attention_heads": 128, "num_key_value_heads": 128, "q_lora_rank": 1536, "kv_lora_rank": 512,
          "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128, "max_position_embeddings": 163840,
          "rope_scaling": { "type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1,
                            "mscale": 1.0, "mscale_all_dim": 1.0 },
          "rms_norm_eps": 1e-6, "rope_theta": 10000, "tie_word_embeddings": false, "bos_token_id": 0, "eos_token_id": 1
        }
        """;
}
