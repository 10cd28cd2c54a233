using DeepSeek.Model.Configuration;

namespace DeepSeek.Runtime.Bench;

/// <summary>Named model shapes for random-weight benchmarks, so a benchmark needs no download.</summary>
public static class ModelShapes
{
    public static IReadOnlyList<string> Names { get; } = ["tiny", "deepseek-v2-lite"];

    public static DeepSeekConfig Get(string name, string embeddedModelDirectory) => name switch
    {
        // The embedded tiny DeepSeek-V3 test model's shape (3 layers, hidden 64, 8 routed experts).
        "tiny" => DeepSeekConfig.Load(embeddedModelDirectory),
        "deepseek-v2-lite" => DeepSeekConfig.Parse(V2LiteConfig),
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
}
