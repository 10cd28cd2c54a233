using DeepSeek.Model.Modeling;
using DeepSeek.Model.Native;
using DeepSeek.Model.Quantization;
using DeepSeek.Model.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Quantization;

/// <summary>
/// Each format against its unquantised model on the fixtures (<see cref="QuantizationAccuracy"/>; the
/// printed lines are the numbers in docs/quantization.md). The threshold is not a number picked from
/// a run: a correctly quantised model must stay about as close to the unquantised one as that model
/// with independent Gaussian noise of the same size added to the same tensors (per tensor, the RMS
/// of quantised minus original). Rounding to a grid is such noise; a systematic fault (a scale applied
/// to the wrong block, nibbles swapped, a zero misplaced) is not, and lands far outside. The slack
/// (1.5× the noise model's RMS logit change, 10 points of top-1 agreement) covers that rounding
/// error is uniform rather than Gaussian and that one noise draw is one sample. Because the noise is
/// as large as the error, the error itself is bounded too, per tensor, by what the grid allows: see
/// <see cref="Int4WeightErrorBound"/> and <see cref="Fp8WeightErrorBound"/>.
/// </summary>
public sealed class QuantizedModelAccuracyTests(ITestOutputHelper output)
{
    private const int Steps = 24;

    /// <summary>
    /// int4 with groups of 16: 16 levels over each group's range, so the RMS rounding error is
    /// (range / 15) / √12; the range of 16 normal draws is about 3.5σ, giving 6.7% of the weights' RMS.
    /// 10% leaves room for groups wider than average.
    /// </summary>
    private const double Int4WeightErrorBound = 0.10;

    /// <summary>
    /// E4M3 keeps 3 mantissa bits, so rounding moves a value by at most half a unit in the last place,
    /// 2⁻⁴ of its magnitude (values the block scale pushes into subnormals move by at most 2⁻¹⁰ of the
    /// block's largest value, far less). Per tensor, RMS error ≤ 2⁻⁴ of the RMS weight.
    /// </summary>
    private const double Fp8WeightErrorBound = 0.0625;

    public static TheoryData<string> Checkpoints => new() { Fixtures.V3Tiny, Fixtures.V2LiteTiny };

    [Theory]
    [MemberData(nameof(Checkpoints))]
    public void Int4_model_stays_as_close_as_noise_of_its_weight_error(string name)
    {
        // Group 16: the fixtures' widths (16 to 128) are below the CLI's 128, which would leave every layer in bf16.
        using var reference = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.BFloat16, CPU);
        using var int4 = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.BFloat16, CPU, loadedPasses: Int4Quantization.Pass(WeightQuantization.Int4(16), ScalarType.BFloat16, CPU));
        using var noisy = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.BFloat16, CPU);
        AssertLikeNoise(name, "int4 group 16 vs bf16", reference, int4, noisy, Int4WeightErrorBound);
    }

    [Theory]
    [MemberData(nameof(Checkpoints))]
    public void Fp8_model_stays_as_close_as_noise_of_its_weight_error(string name)
    {
        var root = Directory.CreateTempSubdirectory("deepseek-fp8-accuracy-").FullName;
        try
        {
            var fp8Directory = Path.Combine(root, "fp8");
            Fp8Checkpoints.Write(name, fp8Directory, Path.Combine(root, "plain"));
            using var reference = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.Float32, CPU);
            using var fp8 = DeepSeekForCausalLM.Load(fp8Directory, ScalarType.Float32, CPU);
            using var noisy = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.Float32, CPU);
            AssertLikeNoise(name, "fp8 (128×128 blocks) vs float32", reference, fp8, noisy, Fp8WeightErrorBound);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Theory]
    [MemberData(nameof(Checkpoints))]
    public void Bf16_against_float32_for_scale(string name)
    {
        // Not a quantisation: how far bf16 arithmetic alone moves the same model, the yardstick for the lines above.
        using var reference = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.Float32, CPU);
        using var bf16 = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.BFloat16, CPU);
        var accuracy = QuantizationAccuracy.Measure(reference, bf16, Prompts(name), Steps);
        output.WriteLine($"{name} bf16 vs float32: {accuracy}");
        Assert.True(accuracy.RmsLogitDiff < accuracy.RmsLogit, "bf16 must not move logits by their whole spread");
    }

    private void AssertLikeNoise(string name, string format, DeepSeekForCausalLM reference, DeepSeekForCausalLM quantised, DeepSeekForCausalLM noisy,
        double weightErrorBound)
    {
        var label = $"{name} {format}";
        var (perturbed, worst, worstTensor) = AddNoiseLike(reference, quantised, noisy);
        Assert.True(perturbed > 0, "the quantised model must differ from the unquantised one somewhere");
        output.WriteLine($"{label}: largest per-tensor relative RMS weight error {worst:P2} ({worstTensor}), bound {weightErrorBound:P2}");
        Assert.True(worst <= weightErrorBound, $"{label}: {worstTensor} moved by {worst:P2} of its RMS, beyond the grid's {weightErrorBound:P2}");
        var actual = QuantizationAccuracy.Measure(reference, quantised, Prompts(name), Steps);
        var noise = QuantizationAccuracy.Measure(reference, noisy, Prompts(name), Steps);
        output.WriteLine($"{label}: {actual}");
        output.WriteLine($"  same-size Gaussian noise on the same {perturbed} tensors: {noise}");
        Assert.True(actual.RmsLogitDiff <= 1.5 * noise.RmsLogitDiff,
            $"{label}: RMS logit change {actual.RmsLogitDiff:G3} exceeds 1.5× that of noise of the weight error's size ({noise.RmsLogitDiff:G3})");
        Assert.True(actual.TopOneAgreement >= noise.TopOneAgreement - 0.10,
            $"{label}: top-1 agreement {actual.TopOneAgreement:P1} is more than 10 points below the noise model's {noise.TopOneAgreement:P1}");
    }

    /// <summary>
    /// Adds to each tensor of <paramref name="noisy"/> Gaussian noise with the RMS of quantised − reference;
    /// returns how many tensors differ and the largest error relative to its tensor's RMS.
    /// </summary>
    private static (int Perturbed, double Worst, string WorstTensor) AddNoiseLike(DeepSeekForCausalLM reference, DeepSeekForCausalLM quantised, DeepSeekForCausalLM noisy)
    {
        using var noGrad = no_grad();
        var quantisedByName = quantised.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var referenceByName = reference.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var generator = new Generator(20_251_202);
        var perturbed = 0;
        var (worst, worstTensor) = (0.0, "");
        foreach (var (name, parameter) in noisy.named_parameters())
        {
            using var scope = NewDisposeScope();
            var original = referenceByName[name];
            // int4 frees the weights it holds as int4; their values are the round trip with its group size.
            var held = quantisedByName[name].numel() == 0 && quantised.Quantization.IsInt4
                ? RoundTrip(original, quantised.Quantization.GroupSize)
                : quantisedByName[name];
            var error = held.to(ScalarType.Float64) - original.to(ScalarType.Float64);
            var rms = error.pow(HeldScalars.Two).mean().sqrt().item<double>();
            if (rms == 0) continue;
            perturbed++;
            var relative = rms / referenceByName[name].to(ScalarType.Float64).pow(HeldScalars.Two).mean().sqrt().item<double>();
            if (relative > worst) (worst, worstTensor) = (relative, name);
            using var rmsScalar = rms.ToScalar();
            var noise = randn(parameter.shape, ScalarType.Float64, generator: generator).mul(rmsScalar);
            parameter.copy_(parameter.to(ScalarType.Float64).Plus(noise).to(parameter.dtype));
        }
        return (perturbed, worst, worstTensor);
    }

    private static Tensor RoundTrip(Tensor weight, int groupSize)
    {
        using var quantized = Int4GroupQuantization.Quantize(weight.reshape(-1, weight.shape[^1]), groupSize);
        return quantized.Dequantize(weight.dtype).view(weight.shape);
    }

    private static long[][] Prompts(string name) => [.. Fixtures.LoadReference(name).Prompts.Select(p => p.InputIds)];
}
