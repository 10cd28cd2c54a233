using DeepSeek.Model.Configuration;
using DeepSeek.Model.Tests.Support;

namespace DeepSeek.Model.Tests.Configuration;

public sealed class DeepSeekConfigTests
{
    [Fact]
    public void Transformers5_style_v3_fixture_implies_sigmoid_noaux_tc()
    {
        var config = DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny));
        Assert.Equal("deepseek_v3", config.ModelType);
        Assert.Equal(("sigmoid", "noaux_tc"), (config.ScoringFunc, config.TopkMethod));
        Assert.Equal(new RopeScaling("default", 10000.0), config.Rope);
        Assert.Equal((32, 2, 1, 2.5, true), (config.QLoraRank!.Value, config.NGroup, config.TopkGroup, config.RoutedScalingFactor, config.NormTopkProb));
        Assert.False(config.IsMoeLayer(0));
        Assert.True(config.IsMoeLayer(1));
    }

    [Fact]
    public void Hub_style_v2_fixture_reads_explicit_routing_keys()
    {
        var config = DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V2LiteTiny));
        Assert.Equal(("softmax", "greedy"), (config.ScoringFunc, config.TopkMethod));
        Assert.Null(config.QLoraRank);
        Assert.Equal(2, config.NSharedExperts);
        Assert.False(config.NormTopkProb);
        Assert.Equal(1.0 / Math.Sqrt(24), config.SoftmaxScale, 12);
    }

    private const string Base = """
        "model_type": "deepseek_v3", "vocab_size": 256, "hidden_size": 64, "intermediate_size": 96,
        "moe_intermediate_size": 32, "num_hidden_layers": 3, "first_k_dense_replace": 1, "n_routed_experts": 8,
        "n_shared_experts": 1, "num_experts_per_tok": 2, "n_group": 4, "topk_group": 2, "num_attention_heads": 4,
        "q_lora_rank": 24, "kv_lora_rank": 16, "qk_rope_head_dim": 8, "qk_nope_head_dim": 16, "v_head_dim": 16,
        "max_position_embeddings": 256
        """;

    [Fact]
    public void Yarn_reads_the_same_from_both_key_styles()
    {
        var transformers = DeepSeekConfig.Parse("{" + Base + """
            , "rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 64,
              "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0}}
            """);
        var hub = DeepSeekConfig.Parse("{" + Base + """
            , "rope_theta": 10000.0, "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64,
              "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0}, "scoring_func": "sigmoid", "topk_method": "noaux_tc"}
            """);
        Assert.Equal(transformers.Rope, hub.Rope);
        Assert.True(hub.Rope.IsYarn);
        Assert.Equal(64, hub.Rope.OriginalMaxPositionEmbeddings);
        // DeepSeek's correction: scale · mscale(factor, mscale_all_dim)² with mscale = 0.1 · ln 4 + 1.
        var m = 0.1 * Math.Log(4.0) + 1.0;
        Assert.Equal(m * m / Math.Sqrt(24), hub.SoftmaxScale, 12);
    }

    [Theory]
    [InlineData(", \"model_type\": \"llama\"", "model_type")]
    [InlineData(", \"n_group\": 3", "n_group")]
    [InlineData(", \"topk_group\": 5", "topk_group")]
    [InlineData(", \"hidden_size\": \"64\"", "hidden_size")]
    [InlineData(", \"scoring_func\": \"relu\"", "scoring_func")]
    [InlineData(", \"qk_rope_head_dim\": 7", "qk_rope_head_dim")]
    [InlineData(", \"num_experts_per_tok\": 9", "num_experts_per_tok")]
    [InlineData(", \"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2.0}", "rope_scaling")]
    public void Invalid_value_names_the_key(string change, string key)
    {
        // Overwrite the base keys rather than append duplicates, so exactly one value is under test.
        var parsed = System.Text.Json.Nodes.JsonNode.Parse("{" + Base + "}")!.AsObject();
        foreach (var (name, value) in System.Text.Json.Nodes.JsonNode.Parse("{" + change.TrimStart(',') + "}")!.AsObject().ToList())
            parsed[name] = value?.DeepClone();
        var json = parsed.ToJsonString();
        var error = Assert.Throws<ConfigException>(() => DeepSeekConfig.Parse(json));
        Assert.Contains(key, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_required_key_is_named()
    {
        var error = Assert.Throws<ConfigException>(() => DeepSeekConfig.Parse("""{"model_type": "deepseek_v2", "vocab_size": 10, "num_attention_heads": 2}"""));
        Assert.Contains("hidden_size", error.Message, StringComparison.Ordinal);
    }
}
