using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;
using DeepSeek.Testing;

namespace DeepSeek.Model.Tests.Quantization;

/// <summary>
/// Block-scaled FP8 checkpoints in the published layout, made from the fixtures by
/// <see cref="Fp8Checkpoints"/> (independently of the reader): they load to exactly the model their
/// dequantised weights make, single-file and sharded, and what the reader cannot read is refused by name.
/// </summary>
public sealed class Fp8CheckpointTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("deepseek-fp8-test-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    public static TheoryData<string> Checkpoints => new() { Fixtures.V3Tiny, Fixtures.V2LiteTiny };

    [Fact]
    public void Blocks_scale_their_own_elements_and_edge_blocks_are_partial()
    {
        using var scope = NewDisposeScope();
        const int rows = 300, columns = 200; // 3 × 2 blocks of 128, the last of each dimension partial
        var random = new Random(5);
        var raw = new byte[rows * columns];
        random.NextBytes(raw);
        for (var i = 0; i < raw.Length; i++) if ((raw[i] & 0x7F) == 0x7F) raw[i] = 0x10; // no NaN codes
        var scales = Enumerable.Range(0, 6).Select(b => (float)(0.001 * (b + 1))).ToArray();

        var weight = Fp8BlockWeights.Dequantize(tensor(raw).reshape(rows, columns), tensor(scales).reshape(3, 2),
            new Fp8BlockQuantization("e4m3", "dynamic", 128, 128));

        Assert.Equal([(long)rows, columns], weight.shape);
        var values = weight.data<float>().ToArray();
        for (var i = 0; i < rows; i++)
            for (var j = 0; j < columns; j++)
                Assert.Equal(Fp8Checkpoints.ValueOf(raw[(i * columns) + j]) * scales[(i / 128 * 2) + (j / 128)], values[(i * columns) + j]);
    }

    [Theory]
    [MemberData(nameof(Checkpoints))]
    public void Fp8_checkpoint_loads_to_exactly_its_dequantised_model(string name)
    {
        var (fp8, plain) = Make(name);
        var prompt = Fixtures.LoadReference(name).Prompts[1].InputIds;
        using var fromFp8 = DeepSeekForCausalLM.Load(fp8, ScalarType.Float32, CPU);
        using var fromPlain = DeepSeekForCausalLM.Load(plain, ScalarType.Float32, CPU);
        Assert.Equal(Logits(fromPlain, prompt), Logits(fromFp8, prompt));
        // And FP8 changed the model: the check above is not comparing the fixture with itself.
        using var original = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.Float32, CPU);
        Assert.NotEqual(Logits(original, prompt), Logits(fromFp8, prompt));
    }

    [Fact]
    public void Sharded_fp8_checkpoint_with_weights_and_scales_in_different_shards_loads_the_same()
    {
        var (fp8, _) = Make(Fixtures.V3Tiny);
        var single = Path.Combine(fp8, SafetensorsCheckpoint.SingleFileName);
        var entries = SafetensorsWriter.ReadAll(single);
        File.Delete(single);
        string[] shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
        // Weights in the first shard, every scale in the second: a scale is looked up across shards.
        bool Second(SafetensorsWriter.Entry e) => e.Name.EndsWith("_scale_inv", StringComparison.Ordinal);
        SafetensorsWriter.Write(Path.Combine(fp8, shards[0]), entries.Where(e => !Second(e)));
        SafetensorsWriter.Write(Path.Combine(fp8, shards[1]), entries.Where(Second));
        var index = new { metadata = new { total_size = entries.Sum(e => e.Data.Length) }, weight_map = entries.ToDictionary(e => e.Name, e => shards[Second(e) ? 1 : 0]) };
        File.WriteAllText(Path.Combine(fp8, SafetensorsCheckpoint.IndexFileName), JsonSerializer.Serialize(index));

        var prompt = Fixtures.LoadReference(Fixtures.V3Tiny).Prompts[0].InputIds;
        using var sharded = DeepSeekForCausalLM.Load(fp8, ScalarType.Float32, CPU);
        using var plain = DeepSeekForCausalLM.Load(Path.Combine(_root, "plain-" + Fixtures.V3Tiny), ScalarType.Float32, CPU);
        Assert.Equal(Logits(plain, prompt), Logits(sharded, prompt));
    }

    [Fact]
    public void Inventory_counts_fp8_bytes_and_not_scales_as_parameters()
    {
        var (fp8, plain) = Make(Fixtures.V3Tiny);
        var config = DeepSeekConfig.Load(fp8);
        Assert.Equal(new Fp8BlockQuantization("e4m3", "dynamic", 128, 128), config.Quantization);
        using var a = SafetensorsCheckpoint.Open(fp8);
        using var b = SafetensorsCheckpoint.Open(plain);
        var quantised = ModelInventory.From(config, a.TensorNames.Select(a.Info));
        var unquantised = ModelInventory.From(DeepSeekConfig.Load(plain), b.TensorNames.Select(b.Info));
        Assert.Equal(unquantised.Parameters, quantised.Parameters);
        var fp8Elements = a.TensorNames.Select(a.Info).Where(t => t.Dtype == Float8E4M3.SafetensorsCode).Sum(t => t.ElementCount);
        Assert.True(fp8Elements > 0);
        Assert.Equal(fp8Elements, quantised.BytesPerDtype[Float8E4M3.SafetensorsCode]);
        Assert.Equal(unquantised.BytesPerDtype["F32"] - (4 * fp8Elements) + a.TensorNames.Where(n => n.EndsWith("_scale_inv", StringComparison.Ordinal)).Sum(n => a.Info(n).ByteLength),
            quantised.BytesPerDtype["F32"]);
    }

    [Theory]
    [InlineData("""{"quant_method": "awq", "bits": 4}""", "quant_method \"awq\"")]
    [InlineData("""{"quant_method": "fp8", "fmt": "e5m2", "weight_block_size": [128, 128]}""", "fmt \"e5m2\"")]
    [InlineData("""{"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "static", "weight_block_size": [128, 128]}""", "activation_scheme \"static\"")]
    [InlineData("""{"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [64, 64]}""", "weight_block_size [64, 64]")]
    [InlineData("""{"quant_method": "fp8", "fmt": "e4m3"}""", "weight_block_size")]
    public void Unsupported_quantization_configs_are_refused_naming_what_is_supported(string quantization, string named)
    {
        var (fp8, _) = Make(Fixtures.V3Tiny);
        Fp8Checkpoints.EditConfig(fp8, config => config["quantization_config"] = JsonNode.Parse(quantization));
        var error = Assert.Throws<ConfigException>(() => DeepSeekForCausalLM.Load(fp8, ScalarType.Float32, CPU));
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        Assert.Contains(Fp8BlockQuantization.Supported, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fp8_tensors_without_quantization_config_or_their_scales_are_refused_by_name()
    {
        var (fp8, _) = Make(Fixtures.V3Tiny);
        Fp8Checkpoints.EditConfig(fp8, config => config.Remove("quantization_config"));
        var error = Assert.Throws<CheckpointFormatException>(() => DeepSeekForCausalLM.Load(fp8, ScalarType.Float32, CPU));
        Assert.Contains("F8_E4M3", error.Message, StringComparison.Ordinal);
        Assert.Contains("quantization_config", error.Message, StringComparison.Ordinal);

        var (withoutScale, _) = Make(Fixtures.V2LiteTiny);
        var path = Path.Combine(withoutScale, SafetensorsCheckpoint.SingleFileName);
        var entries = SafetensorsWriter.ReadAll(path);
        const string weight = "model.layers.0.self_attn.o_proj.weight";
        SafetensorsWriter.Write(path, entries.Where(e => e.Name != weight + "_scale_inv"));
        error = Assert.Throws<CheckpointFormatException>(() => DeepSeekForCausalLM.Load(withoutScale, ScalarType.Float32, CPU));
        Assert.Contains($"'{weight}_scale_inv'", error.Message, StringComparison.Ordinal);

        SafetensorsWriter.Write(path, entries.Select(e => e.Name == weight + "_scale_inv" ? e with { Shape = [1, 2], Data = [.. e.Data, .. e.Data] } : e));
        error = Assert.Throws<CheckpointFormatException>(() => DeepSeekForCausalLM.Load(withoutScale, ScalarType.Float32, CPU));
        Assert.Contains("needs [1, 1]", error.Message, StringComparison.Ordinal);
    }

    private (string Fp8, string Plain) Make(string name)
    {
        var fp8 = Path.Combine(_root, "fp8-" + name);
        var plain = Path.Combine(_root, "plain-" + name);
        Fp8Checkpoints.Write(name, fp8, plain);
        return (fp8, plain);
    }

    private static float[] Logits(DeepSeekForCausalLM model, long[] prompt)
    {
        using var cache = model.CreateCache(prompt.Length);
        using var output = model.Forward(ForwardBatch.Contiguous(prompt, 0, LogitsSelection.AllTokens), cache);
        return output.Logits.data<float>().ToArray();
    }
}
