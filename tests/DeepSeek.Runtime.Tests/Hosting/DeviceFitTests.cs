using DeepSeek.Engine;
using DeepSeek.Model.Quantization;
using DeepSeek.Runtime.Experts;
using DeepSeek.Runtime.Hosting;
using TorchSharp;

namespace DeepSeek.Runtime.Tests.Hosting;

/// <summary>serve's check before the load: the memory plan of this run against the device's free memory.</summary>
public sealed class DeviceFitTests
{
    private const long GiB = 1L << 30;

    private static ModelFolder V2Lite(torch.ScalarType dtype, WeightQuantization quantization) => ModelFolder.Open(
        Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "fixtures", "deepseek-v2-lite-config"), dtype, quantization);

    private static ServeConfiguration Serve(int rank = 0, int worldSize = 1, int? maxContext = null) => new()
    {
        Engine = EngineOptions.Defaults with { Device = "cuda", MaxModelLength = maxContext },
        Parallel = new ExpertParallelSettings { Rank = rank, WorldSize = worldSize },
    };

    [Fact]
    public void V2_lite_in_bf16_fits_an_80_gib_gpu() =>
        Assert.Null(DeviceFit.Problem(V2Lite(torch.ScalarType.BFloat16, WeightQuantization.None), Serve(), 80 * GiB));

    [Fact]
    public void V2_lite_in_bf16_on_a_24_gib_gpu_is_refused_with_the_plan_and_what_to_change()
    {
        var problem = DeviceFit.Problem(V2Lite(torch.ScalarType.BFloat16, WeightQuantization.None), Serve(), 24 * GiB);

        Assert.NotNull(problem);
        var lines = problem.Split('\n');
        Assert.StartsWith("deepseek_v2 does not fit cuda (24.0 GiB free) at expert-parallel size 1 in bf16: 29.", lines[0], StringComparison.Ordinal);
        Assert.True(("serve: " + lines[0]).Length <= 300, $"{lines[0].Length} characters: the operator quotes 300 of a termination message");
        Assert.Contains("--quantization fp8 or int4", lines[0], StringComparison.Ordinal);
        Assert.Contains(lines, l => l.StartsWith("| bf16 ", StringComparison.Ordinal) && l.EndsWith("no |", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("fp8: smallest EP that fits is", StringComparison.Ordinal));
    }

    [Fact]
    public void Fp8_holds_what_bf16_cannot_on_the_same_gpu()
    {
        var context = Serve(maxContext: 32768);
        Assert.NotNull(DeviceFit.Problem(V2Lite(torch.ScalarType.BFloat16, WeightQuantization.None), context, 24 * GiB));
        Assert.Null(DeviceFit.Problem(V2Lite(torch.ScalarType.BFloat16, WeightQuantization.Fp8), context, 24 * GiB));
    }

    [Fact]
    public void Float32_weights_are_priced_at_four_bytes()
    {
        var bf16 = DeviceFit.Problem(V2Lite(torch.ScalarType.BFloat16, WeightQuantization.None), Serve(), 8 * GiB)!;
        var float32 = DeviceFit.Problem(V2Lite(torch.ScalarType.Float32, WeightQuantization.None), Serve(), 8 * GiB)!;
        static double Weights(string problem) => double.Parse(problem.Split(": ")[1].Split(" GiB")[0], System.Globalization.CultureInfo.InvariantCulture);

        Assert.Contains(" in float32: ", float32, StringComparison.Ordinal);
        Assert.InRange(Weights(float32) / Weights(bf16), 1.99, 2.01);
    }

    [Fact]
    public void A_member_rank_is_not_priced_as_the_leader() =>
        Assert.Null(DeviceFit.Problem(V2Lite(torch.ScalarType.BFloat16, WeightQuantization.None), Serve(rank: 1, worldSize: 2), 1 * GiB));
}
