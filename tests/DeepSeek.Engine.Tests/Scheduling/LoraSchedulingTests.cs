using DeepSeek.Engine.KvCache;
using DeepSeek.Engine.Requests;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Lora;

namespace DeepSeek.Engine.Tests.Scheduling;

/// <summary>LoRA adapters in scheduling: a step never names more than <c>--max-loras</c> adapters, and adapters never share prefix blocks.</summary>
public sealed class LoraSchedulingTests
{
    private static readonly DeepSeekConfig Config = DeepSeekConfig.Parse("""
        {"model_type":"deepseek_v3","vocab_size":50,"hidden_size":8,"intermediate_size":16,"moe_intermediate_size":4,"num_hidden_layers":1,
         "num_attention_heads":2,"q_lora_rank":null,"kv_lora_rank":4,"qk_nope_head_dim":2,"qk_rope_head_dim":2,"v_head_dim":2,
         "n_routed_experts":0,"n_shared_experts":0,"num_experts_per_tok":1,"first_k_dense_replace":1}
        """);

    private static LoraAdapter Adapter(string name)
    {
        var targets = LoraTargets.Of(Config);
        var (inFeatures, outFeatures) = targets.Supported["model.layers.0.self_attn.o_proj"];
        var weights = new LoraWeights(1, (int)inFeatures, (int)outFeatures, new float[inFeatures], new float[outFeatures]);
        return LoraAdapter.FromWeights(name, 1, false, new Dictionary<string, LoraWeights> { ["model.layers.0.self_attn.o_proj"] = weights }, targets, maxRank: 4);
    }

    private static SamplingParameters Tokens(int max) => SamplingParameters.Greedy with { MaxTokens = max, IgnoreEos = true };

    [Fact]
    public void A_request_of_a_further_adapter_waits_while_later_ones_of_running_adapters_and_the_base_go_ahead()
    {
        var loop = new EngineLoop(new EngineOptions { MaxBatchTokens = 64, MaxRunningRequests = 8, MaxLoras = 1 }, numBlocks: 64, blockSize: 4);
        var (x, y) = (Adapter("x"), Adapter("y"));
        var requests = new[]
        {
            new EngineRequest("x1", [1, 2, 3], Tokens(4), x),
            new EngineRequest("y1", [1, 2, 3], Tokens(4), y),
            new EngineRequest("base", [1, 2, 3], Tokens(4)),
            new EngineRequest("x2", [4, 5, 6], Tokens(2), x),
        };
        foreach (var request in requests) loop.Scheduler.Add(request);

        loop.Step();
        Assert.Equal(["x1", "base", "x2"], loop.Steps[^1].Sequences.Select(s => s.Request.Id));
        Assert.Equal(1, loop.Scheduler.NumWaiting);
        loop.RunToCompletion();
        // y1 ran only once no request of x was left, and never beside one.
        Assert.All(loop.Steps, step => Assert.True(step.Sequences.Select(s => s.Request.Adapter).OfType<LoraAdapter>().Distinct().Count() <= 1));
        Assert.Contains(loop.Steps, step => step.Sequences.Any(s => s.Request.Id == "y1"));
        Assert.All(requests, r => Assert.Equal(FinishReason.Length, r.FinishReason));
    }

    [Fact]
    public void The_same_tokens_under_two_adapters_or_the_base_hash_apart_and_an_adapter_loaded_again_is_new()
    {
        var tokens = Enumerable.Range(1, 8).ToArray();
        List<BlockHash> Hashes(LoraAdapter? adapter)
        {
            var hashes = new List<BlockHash>();
            PrefixCache.ExtendBlockHashes(i => tokens[i], tokens.Length, 4, hashes, adapter is null ? null : BlockHash.ForAdapter(adapter.Id));
            return hashes;
        }
        var (x, y, xAgain) = (Adapter("x"), Adapter("y"), Adapter("x"));
        var all = new[] { Hashes(null), Hashes(x), Hashes(y), Hashes(xAgain) };
        Assert.Equal(4, all.Select(h => h[0]).Distinct().Count());
        Assert.Equal(4, all.Select(h => h[1]).Distinct().Count());
        Assert.Equal(Hashes(x), all[1]);
    }
}
