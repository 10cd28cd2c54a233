using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Quantization;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;
using DeepSeek.Testing;

namespace DeepSeek.Model.Tests.Quantization;

/// <summary>
/// FP8-resident weights (<c>--quantization fp8</c>): an FP8 checkpoint held as its bytes and block
/// scales computes exactly what the same checkpoint dequantised at load computes, in a fraction of
/// the bytes; a bf16 checkpoint quantised on load is the model of the FP8 checkpoint that
/// <see cref="Fp8Checkpoints"/> makes from it independently; the encoder agrees with the format.
/// </summary>
public sealed class Fp8ResidencyTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("deepseek-fp8-resident-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    public static TheoryData<string, ScalarType> CheckpointsAndDTypes => new()
    {
        { Fixtures.V3Tiny, ScalarType.Float32 },
        { Fixtures.V2LiteTiny, ScalarType.Float32 },
        { Fixtures.V3Tiny, ScalarType.BFloat16 },
    };

    [Fact]
    public void Encoding_round_trips_every_finite_code_rounds_ties_to_even_and_saturates()
    {
        using var scope = NewDisposeScope();
        var codes = Enumerable.Range(0, 256).Where(b => (b & 0x7F) != 0x7F && b != 0x80).ToArray();
        var values = tensor(codes.Select(b => Fp8Checkpoints.ValueOf(b)).ToArray());
        Assert.Equal(codes.Select(b => (byte)b).ToArray(), Float8E4M3.Encode(values).data<byte>().ToArray());

        // 1.0625 lies halfway between 1.0 (0x38) and 1.125 (0x39): to the even mantissa, 0x38;
        // 1.1875 halfway between 1.125 and 1.25 (0x3A): 0x3A. Beyond ±448: the largest finite codes.
        float[] edge = [1.0625f, 1.1875f, -1.1875f, 1000f, -1000f, 0.0009765625f / 2];
        byte[] expected = [0x38, 0x3A, 0xBA, 0x7E, 0xFE, 0x00];
        Assert.Equal(expected, Float8E4M3.Encode(tensor(edge)).data<byte>().ToArray());
    }

    [Theory]
    [MemberData(nameof(CheckpointsAndDTypes))]
    public void An_fp8_checkpoint_held_as_fp8_computes_exactly_its_model_dequantised_at_load(string fixture, ScalarType dtype)
    {
        var (fp8, _) = Make(fixture);
        var config = DeepSeekConfig.Load(fp8);
        var prompt = Fixtures.LoadReference(fixture).Prompts[1].InputIds;
        using var resident = DeepSeekForCausalLM.Load(fp8, dtype, CPU, passes: m => Fp8Residency.Declare(m, fp8, config.Quantization!));
        using var dequantised = DeepSeekForCausalLM.Load(fp8, dtype, CPU);
        // The same expert path on both, so the sums are taken in one order.
        foreach (var experts in dequantised.RoutedExperts) experts.Local = new LocalExperts(experts, ExpertComputePath.Sorted);
        Assert.All(resident.RoutedExperts, experts => Assert.Equal(ExpertComputePath.Sorted, experts.Local.Path));

        Assert.Equal(WeightQuantization.Fp8, resident.Quantization);
        var held = resident.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(ScalarType.Byte, held["model.layers.0.self_attn.o_proj.weight"].dtype);
        Assert.Equal(ScalarType.Byte, held["model.layers.1.mlp.experts.gate_up_proj"].dtype);
        Assert.Equal(ScalarType.Byte, held["model.layers.1.mlp.shared_experts.down_proj.weight"].dtype);
        Assert.Equal(dtype, held["model.layers.0.self_attn.kv_b_proj.weight"].dtype);
        Assert.Equal(dtype, held["lm_head.weight"].dtype);
        Assert.True(resident.ResidentBytes < dequantised.ResidentBytes, $"{resident.ResidentBytes} resident against {dequantised.ResidentBytes}");

        Assert.Equal(Logits(dequantised, prompt), Logits(resident, prompt));
    }

    [Fact]
    public void Projections_and_experts_hold_one_byte_a_weight_plus_their_block_scales()
    {
        var (fp8, _) = Make(Fixtures.V3Tiny);
        var config = DeepSeekConfig.Load(fp8);
        using var resident = DeepSeekForCausalLM.Load(fp8, ScalarType.BFloat16, CPU, passes: m => Fp8Residency.Declare(m, fp8, config.Quantization!));
        using var declared = DeepSeekForCausalLM.Build(config, ScalarType.BFloat16);
        // From shapes alone (what inspect and the memory plan count) equals what the loaded model holds.
        var planned = declared.named_modules().Sum(m => Fp8Residency.HeldBytes(m.name, m.module, config.Quantization!));
        Assert.Equal(planned, resident.ResidentBytes);
    }

    [Fact]
    public void A_bf16_checkpoint_quantised_on_load_is_the_model_of_its_independently_made_fp8_checkpoint()
    {
        var (fp8, _) = Make(Fixtures.V3Tiny);
        var config = DeepSeekConfig.Load(fp8);
        var prompt = Fixtures.LoadReference(Fixtures.V3Tiny).Prompts[0].InputIds;
        using var quantised = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.Float32, CPU, loadedPasses: m => Fp8Residency.Quantize(m, Fp8Residency.Published));
        using var fromFp8 = DeepSeekForCausalLM.Load(fp8, ScalarType.Float32, CPU, passes: m => Fp8Residency.Declare(m, fp8, config.Quantization!));
        // kv_b_proj stays in the run dtype on load (absorbed attention reads it as a matrix), so the
        // quantised model holds the original; the FP8 checkpoint's was rounded when it was made.
        using var original = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.Float32, CPU);
        var originals = original.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (no_grad())
            foreach (var (name, parameter) in fromFp8.named_parameters().Where(p => p.name.Contains("kv_b_proj", StringComparison.Ordinal)))
                parameter.copy_(originals[name]);

        var made = quantised.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in fromFp8.named_parameters())
            Assert.True(made[name].dtype == parameter.dtype && made[name].eq(parameter).all().item<bool>(), $"{name} differs from the FP8 checkpoint's");
        Assert.Equal(Logits(fromFp8, prompt), Logits(quantised, prompt));
    }

    [Fact]
    public void A_resident_fp8_checkpoint_missing_a_scale_is_refused_naming_the_tensor()
    {
        var (fp8, _) = Make(Fixtures.V3Tiny);
        var config = DeepSeekConfig.Load(fp8);
        var single = Path.Combine(fp8, SafetensorsCheckpoint.SingleFileName);
        const string missing = "model.layers.1.mlp.experts.3.up_proj.weight_scale_inv";
        SafetensorsWriter.Write(single, SafetensorsWriter.ReadAll(single).Where(e => e.Name != missing).ToList());

        var error = Assert.Throws<CheckpointFormatException>(() => DeepSeekForCausalLM.Load(fp8, ScalarType.BFloat16, CPU, passes: m => Fp8Residency.Declare(m, fp8, config.Quantization!)));
        Assert.Contains(missing, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    private (string Fp8, string Plain) Make(string fixture)
    {
        var fp8 = Path.Combine(_root, "fp8-" + fixture);
        var plain = Path.Combine(_root, "plain-" + fixture);
        Fp8Checkpoints.Write(fixture, fp8, plain);
        return (fp8, plain);
    }

    private static float[] Logits(DeepSeekForCausalLM model, long[] prompt)
    {
        using var scope = NewDisposeScope();
        using var cache = model.CreateCache(prompt.Length);
        using var output = model.Forward(ForwardBatch.Contiguous(prompt, 0, LogitsSelection.AllTokens), cache);
        return output.Logits.to(ScalarType.Float32).data<float>().ToArray();
    }
}
