using DeepSeek.Model.Tests.Support;

namespace DeepSeek.Model.Tests.Native;

/// <summary><c>bench native</c> on a machine without CUDA: every refusal is a clear message and exit code 1, never a crash.</summary>
public sealed class NativeBenchVerbTests
{
    /// <summary><c>bench native</c> with no <c>DEEPSEEK_LIBTORCH_DIR</c> inherited, so the refusals are those of a machine without CUDA.</summary>
    private static (int ExitCode, string Stderr) RunBenchNative(params string[] arguments)
    {
        var (code, _, stderr) = RuntimeProcess.Run(new Dictionary<string, string?> { ["DEEPSEEK_LIBTORCH_DIR"] = null }, ["bench", "native", .. arguments]);
        return (code, stderr);
    }

    [Theory]
    [InlineData("needs a CUDA --device", "--device", "cpu")]
    [InlineData("\"tensor-cores\" is not one of graphs, grouped-mm, int4, fp8, nccl", "--sections", "graphs,tensor-cores")]
    [InlineData("--nccl-store host:port is needed", "--nccl-world-size", "2")]
    [InlineData("--nccl-rank 2 is not a rank of --nccl-world-size 2", "--nccl-world-size", "2", "--nccl-rank", "2")]
    [InlineData("--nccl-store must be host:port", "--nccl-store", "localhost")]
    [InlineData("CUDA was asked for but is not available", "--device", "cuda")]
    public void Refusals_are_explained(string expected, params string[] arguments)
    {
        var (code, stderr) = RunBenchNative(arguments);

        Assert.Equal(1, code);
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", stderr, StringComparison.Ordinal);
    }
}
