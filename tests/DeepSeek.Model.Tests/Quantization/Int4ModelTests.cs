using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Native;
using DeepSeek.Model.Quantization;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Quantization;

/// <summary>int4 weight-only at load on the CPU reference path: what is quantised, what is not, and what is refused.</summary>
public sealed class Int4ModelTests
{
    [Fact]
    public void Projections_and_experts_hold_their_int4_round_trip_and_the_rest_is_untouched()
    {
        using var plain = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.BFloat16, CPU);
        var lines = new List<string>();
        using var int4 = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.BFloat16, CPU, quantization: WeightQuantization.Int4(16), log: lines.Add);

        Assert.Equal(WeightQuantization.Int4(16), int4.Quantization);
        Assert.Contains(lines, l => l.Contains("0 layers kept", StringComparison.Ordinal));
        var original = plain.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var quantised = 0;
        foreach (var (name, parameter) in int4.named_parameters())
        {
            using var scope = NewDisposeScope();
            var before = original[name];
            var stays = name.StartsWith("model.embed_tokens", StringComparison.Ordinal) || name.StartsWith("lm_head", StringComparison.Ordinal)
                || name.Contains("norm", StringComparison.Ordinal) || name.Contains(".mlp.gate.", StringComparison.Ordinal)
                || name.Contains("kv_b_proj", StringComparison.Ordinal) || name.Contains("e_score_correction_bias", StringComparison.Ordinal);
            if (stays)
            {
                Assert.True(Same(parameter, before), $"{name} must stay as loaded");
                continue;
            }
            // A stack of experts is quantised expert by expert; each row's groups are independent, so
            // the stack's round trip equals that of its [experts · rows, in] view.
            var matrix = before.reshape(-1, before.shape[^1]);
            using var expected = Int4GroupQuantization.Quantize(matrix, 16);
            Assert.True(Same(parameter.reshape(-1, before.shape[^1]), expected.Dequantize(ScalarType.BFloat16)), $"{name} is not its int4 round trip");
            Assert.False(Same(parameter, before), $"{name} did not change: it was not quantised");
            quantised++;
        }
        Assert.True(quantised >= 10, $"only {quantised} tensors quantised");
    }

    [Fact]
    public void A_width_the_group_does_not_divide_keeps_its_layer_unquantised_and_says_so()
    {
        // Group 128 on the tiny fixture: no projection has 128-multiple inputs except the dense MLP's down_proj.
        var lines = new List<string>();
        using var int4 = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V2LiteTiny), ScalarType.BFloat16, CPU, quantization: WeightQuantization.Int4(), log: lines.Add);
        using var plain = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V2LiteTiny), ScalarType.BFloat16, CPU);

        Assert.Contains(lines, l => l.StartsWith("int4: model.layers.1.mlp.experts stays bfloat16: in_features 64 is not a multiple of the int4 group size 128", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("int4: model.layers.0.self_attn.q_proj stays bfloat16", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("model.layers.0.mlp.down_proj stays", StringComparison.Ordinal));
        var before = plain.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in int4.named_parameters())
            Assert.Equal(name != "model.layers.0.mlp.down_proj.weight", Same(parameter, before[name]));
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.Float64)]
    public void Int4_with_activations_other_than_bf16_is_refused(ScalarType dtype)
    {
        var error = Assert.Throws<ArgumentException>(() => DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), dtype, CPU, quantization: WeightQuantization.Int4()));
        Assert.Contains("--dtype bfloat16", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_quantization_names_are_refused_naming_the_supported_ones()
    {
        var error = Assert.Throws<ArgumentException>(() => WeightQuantization.Parse("int8"));
        Assert.Contains("none or int4", error.Message, StringComparison.Ordinal);
        Assert.Same(WeightQuantization.None, WeightQuantization.Parse("none"));
        Assert.Equal(WeightQuantization.Int4(128), WeightQuantization.Parse("int4"));
    }

    [Fact]
    public void Resident_bytes_of_the_v2_lite_shape_drop_to_about_a_quarter_with_int4()
    {
        var v2Lite = DeepSeekConfig.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "V2LiteShape.json")));
        var bf16 = DeepSeekForCausalLM.ResidentBytesFor(v2Lite, ScalarType.BFloat16, WeightQuantization.None);
        var int4 = DeepSeekForCausalLM.ResidentBytesFor(v2Lite, ScalarType.BFloat16, WeightQuantization.Int4());
        using (var declared = DeepSeekForCausalLM.Build(v2Lite, ScalarType.BFloat16)) Assert.Equal(declared.ParameterBytes, bf16);

        // Embedding and LM head (2 × 102400 × 2048, bf16), norms, router and kv_b_proj stay, and so
        // does the dense layer's down_proj, whose 10944 inputs are not a multiple of 128; every other
        // weight takes 4 bits plus a bf16 scale and zero per 128 values: 0.25 + 4/256 of its bf16 bytes.
        long kept = 0;
        using (var declared = DeepSeekForCausalLM.Build(v2Lite, ScalarType.BFloat16))
            foreach (var (name, parameter) in declared.named_parameters())
                if (name.Contains("embed_tokens", StringComparison.Ordinal) || name.StartsWith("lm_head", StringComparison.Ordinal)
                    || parameter.dim() == 1 || name.Contains(".mlp.gate.", StringComparison.Ordinal) || name.Contains("kv_b_proj", StringComparison.Ordinal)
                    || name == "model.layers.0.mlp.down_proj.weight")
                    kept += parameter.numel() * parameter.element_size();
        Assert.Equal(kept + ((bf16 - kept) * (0.25 + (4.0 / 256))), int4, precision: 0);
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
