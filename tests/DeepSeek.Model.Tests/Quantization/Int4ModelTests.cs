using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Native;
using DeepSeek.Model.Quantization;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Quantization;

/// <summary>int4 weight-only at load on the CPU reference path (the GPU path with the kernel call replaced by dequantise-and-multiply): what is quantised, what is not, and what is refused.</summary>
public sealed class Int4ModelTests
{
    [Fact]
    public void The_int4_model_computes_exactly_the_model_of_its_dequantised_weights_and_holds_int4_bytes()
    {
        var lines = new List<string>();
        using var int4 = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.BFloat16, CPU, loadedPasses: Int4Quantization.Pass(WeightQuantization.Int4(16), ScalarType.BFloat16, CPU, lines.Add), log: lines.Add);
        Assert.Equal(WeightQuantization.Int4(16), int4.Quantization);
        Assert.Contains(lines, l => l.Contains("0 layers kept", StringComparison.Ordinal));

        // The expected model, built independently: the plain bf16 model with every weight that int4
        // freed replaced by its round trip, and its experts forced onto the Sorted path int4 runs.
        using var expected = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.BFloat16, CPU);
        var held = int4.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        long expectedBytes = 0;
        var quantised = new List<string>();
        using (no_grad())
            foreach (var (name, parameter) in expected.named_parameters())
            {
                using var scope = NewDisposeScope();
                if (held[name].numel() > 0)
                {
                    Assert.True(Same(held[name], parameter), $"{name} must stay as loaded");
                    expectedBytes += parameter.numel() * parameter.element_size();
                    continue;
                }
                quantised.Add(name);
                // A stack of experts is quantised expert by expert; rows are independent, so its round
                // trip is that of its [experts · rows, in] view.
                var k = parameter.shape[^1];
                using var roundTrip = Int4GroupQuantization.Quantize(parameter.reshape(-1, k), 16);
                parameter.copy_(roundTrip.Dequantize(ScalarType.BFloat16).view(parameter.shape));
                expectedBytes += (parameter.numel() / 2) + (parameter.numel() / 16 * 4);
            }
        Assert.All(int4.RoutedExperts, experts => Assert.Equal(ExpertComputePath.Sorted, experts.Local.Path));
        foreach (var experts in expected.RoutedExperts) experts.Local = new LocalExperts(experts, ExpertComputePath.Sorted);

        // Everything but the embeddings, norms, router, LM head and kv_b_proj is held as int4.
        Assert.All(quantised, name => Assert.False(name.Contains("embed", StringComparison.Ordinal) || name.StartsWith("lm_head", StringComparison.Ordinal)
            || name.Contains("norm", StringComparison.Ordinal) || name.Contains(".mlp.gate.", StringComparison.Ordinal) || name.Contains("kv_b_proj", StringComparison.Ordinal), name));
        Assert.Contains("model.layers.1.mlp.experts.gate_up_proj", quantised);
        Assert.Contains("model.layers.0.self_attn.q_a_proj.weight", quantised);
        Assert.Equal(expectedBytes, int4.ResidentBytes);

        foreach (var prompt in Fixtures.LoadReference(Fixtures.V3Tiny).Prompts.Take(2))
        {
            using var cacheA = int4.CreateCache(prompt.InputIds.Length);
            using var cacheB = expected.CreateCache(prompt.InputIds.Length);
            using var a = int4.Forward(ForwardBatch.Contiguous(prompt.InputIds, 0, LogitsSelection.AllTokens), cacheA);
            using var b = expected.Forward(ForwardBatch.Contiguous(prompt.InputIds, 0, LogitsSelection.AllTokens), cacheB);
            Assert.True(Same(a.Logits, b.Logits), "int4 logits differ from those of the dequantised weights");
        }
    }

    [Fact]
    public void A_width_the_group_does_not_divide_keeps_its_layer_unquantised_and_says_so()
    {
        // Group 128 on the tiny fixture: no projection has 128-multiple inputs except the dense MLP's down_proj.
        var lines = new List<string>();
        using var int4 = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V2LiteTiny), ScalarType.BFloat16, CPU, loadedPasses: Int4Quantization.Pass(WeightQuantization.Int4(), ScalarType.BFloat16, CPU, lines.Add), log: lines.Add);
        using var plain = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V2LiteTiny), ScalarType.BFloat16, CPU);

        Assert.Contains(lines, l => l.StartsWith("int4: model.layers.1.mlp.experts stays bfloat16: hidden size 64 is not a multiple of the int4 group size 128", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("int4: model.layers.0.self_attn.q_proj stays bfloat16", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("model.layers.0.mlp.down_proj stays", StringComparison.Ordinal));
        var before = plain.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in int4.named_parameters())
        {
            if (name == "model.layers.0.mlp.down_proj.weight") Assert.Equal(0, parameter.numel()); // held as int4
            else Assert.True(Same(parameter, before[name]), $"{name} must stay as loaded");
        }
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.Float64)]
    public void Int4_with_activations_other_than_bf16_is_refused(ScalarType dtype)
    {
        var error = Assert.Throws<ArgumentException>(() => DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), dtype, CPU, loadedPasses: Int4Quantization.Pass(WeightQuantization.Int4(), dtype, CPU)));
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
        var bf16 = Int4Quantization.ResidentBytesFor(v2Lite, ScalarType.BFloat16, WeightQuantization.None);
        var int4 = Int4Quantization.ResidentBytesFor(v2Lite, ScalarType.BFloat16, WeightQuantization.Int4());
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
