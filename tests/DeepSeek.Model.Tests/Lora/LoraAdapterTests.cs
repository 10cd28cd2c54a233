using System.Text.Json.Nodes;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Lora;
using DeepSeek.Model.Tests.Support;
using DeepSeek.Testing;

namespace DeepSeek.Model.Tests.Lora;

/// <summary>Reading PEFT adapter folders: what is served, and the one-line refusal of what is not.</summary>
public sealed class LoraAdapterTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("deepseek-lora-test-").FullName;
    private readonly LoraTargets _targets = LoraTargets.Of(DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny)));

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Adapter(LoraFolders.Spec spec, Action<JsonObject>? edit = null, string? name = null) =>
        LoraFolders.WriteAdapter(Fixtures.Dir(Fixtures.V3Tiny), spec, Path.Combine(_root, name ?? spec.Name), edit);

    [Fact]
    public void A_peft_folder_loads_with_its_rank_scale_and_projections()
    {
        var plain = LoraAdapter.Load("a", Adapter(LoraFolders.AttentionR4), _targets, maxRank: 16);
        Assert.Equal(4, plain.Rank);
        Assert.Equal(2.0, plain.Scale);
        // Three layers, each with q_a, q_b, kv_a and o.
        Assert.Equal(12, plain.Modules.Count);
        Assert.Contains("model.layers.2.self_attn.q_b_proj", plain.Modules.Keys);
        var q = plain.Modules["model.layers.0.self_attn.q_a_proj"];
        Assert.Equal((4, 64, 32), (q.Rank, q.In, q.Out));
        Assert.Equal(4 * 64, q.A.Length);

        var rs = LoraAdapter.Load("b", Adapter(LoraFolders.MlpR8Rslora), _targets, maxRank: 16);
        Assert.Equal(16 / Math.Sqrt(8), rs.Scale, 12);
        // Layer 0's dense MLP and layers 1-2's shared experts, never a routed expert.
        Assert.Contains("model.layers.0.mlp.down_proj", rs.Modules.Keys);
        Assert.Contains("model.layers.1.mlp.shared_experts.gate_proj", rs.Modules.Keys);
        Assert.DoesNotContain(rs.Modules.Keys, m => m.Contains(".experts.", StringComparison.Ordinal) && !m.Contains("shared", StringComparison.Ordinal));
        Assert.NotEqual(plain.Id, rs.Id);
    }

    public static TheoryData<string, string> Refusals => new()
    {
        { "dora", "DoRA" },
        { "bias", "bias is 'all'" },
        { "rank", "above --max-lora-rank 2" },
        { "missing-module", "target_modules names 'c_attn', which this model does not have" },
        { "kv_b", "kv_b_proj is absorbed" },
        { "routed", "routed experts" },
        { "shape", "lora_A is [4, 63]" },
        { "no-config", "adapter_config.json is missing" },
        { "no-weights", "adapter_model.safetensors is missing" },
        { "no-folder", "the folder does not exist" },
        { "patterns", "rank_pattern is set" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void What_is_not_supported_is_refused_in_one_line_naming_it(string kind, string expected)
    {
        var spec = LoraFolders.AttentionR4;
        var directory = kind switch
        {
            "dora" => Adapter(spec, c => c["use_dora"] = true, kind),
            "bias" => Adapter(spec, c => c["bias"] = "all", kind),
            "rank" => Adapter(spec, name: kind),
            "missing-module" => Adapter(spec, c => c["target_modules"] = new JsonArray("q_a_proj", "c_attn"), kind),
            "patterns" => Adapter(spec, c => c["rank_pattern"] = new JsonObject { ["q_a_proj"] = 2 }, kind),
            "kv_b" => WithTensors(Adapter(spec, c => c["target_modules"] = new JsonArray("kv_b_proj"), kind), "model.layers.0.self_attn.kv_b_proj", 4, 16, 4 * 32),
            "routed" => WithTensors(Adapter(spec, c => c["target_modules"] = new JsonArray("gate_proj"), kind), "model.layers.1.mlp.experts.3.gate_proj", 4, 64, 32),
            "shape" => WithTensors(Adapter(spec, name: kind), "model.layers.0.self_attn.q_a_proj", 4, 63, 32),
            "no-config" => Without(Adapter(spec, name: kind), "adapter_config.json"),
            "no-weights" => Without(Adapter(spec, name: kind), "adapter_model.safetensors"),
            _ => Path.Combine(_root, "nowhere"),
        };
        var refusal = Assert.Throws<LoraAdapterException>(() => LoraAdapter.Load("x", directory, _targets, maxRank: kind == "rank" ? 2 : 16));
        Assert.Contains(expected, refusal.Message, StringComparison.Ordinal);
        Assert.StartsWith("LoRA adapter 'x' (", refusal.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', refusal.Message);
    }

    [Fact]
    public void The_adapter_set_refuses_a_taken_name_and_the_base_name_and_forgets_unloaded_adapters()
    {
        var set = new LoraAdapterSet("base", _targets, maxRank: 16, updatable: true);
        var folder = Adapter(LoraFolders.AttentionR4);
        var first = set.Load("a", folder);
        Assert.Contains("already been loaded", Assert.Throws<LoraAdapterException>(() => set.Load("a", folder)).Message, StringComparison.Ordinal);
        Assert.Contains("base model's served name", Assert.Throws<LoraAdapterException>(() => set.Load("base", folder)).Message, StringComparison.Ordinal);
        Assert.Same(first, set.Find("a"));
        Assert.True(set.Unload("a"));
        Assert.False(set.Unload("a"));
        Assert.Null(set.Find("a"));
        // Loaded again, it is another adapter (its prefix-cache blocks are not the first one's).
        Assert.NotEqual(first.Id, set.Load("a", folder).Id);
        Assert.Equal(_targets.Supported.Count, set.SlotModules().Count);
    }

    /// <summary>Replaces the adapter's weights by one A/B pair for <paramref name="module"/> with A <c>[rank, inFeatures]</c>.</summary>
    private static string WithTensors(string directory, string module, int rank, long inFeatures, long outFeatures)
    {
        SafetensorsWriter.Write(Path.Combine(directory, "adapter_model.safetensors"),
        [
            SafetensorsWriter.F32($"base_model.model.{module}.lora_A.weight", [rank, inFeatures], new float[rank * inFeatures]),
            SafetensorsWriter.F32($"base_model.model.{module}.lora_B.weight", [outFeatures, rank], new float[outFeatures * rank]),
        ]);
        return directory;
    }

    private static string Without(string directory, string file)
    {
        File.Delete(Path.Combine(directory, file));
        return directory;
    }
}
