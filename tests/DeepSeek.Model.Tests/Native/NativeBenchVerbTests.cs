using System.Diagnostics;

namespace DeepSeek.Model.Tests.Native;

/// <summary><c>bench native</c> on a machine without CUDA: every refusal is a clear message and exit code 1, never a crash.</summary>
public sealed class NativeBenchVerbTests
{
    private static (int ExitCode, string Stderr) RunBenchNative(params string[] arguments)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "deepseek-runtime.dll"));
        start.ArgumentList.Add("bench");
        start.ArgumentList.Add("native");
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        start.Environment.Remove("DEEPSEEK_LIBTORCH_DIR");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill();
            throw new TimeoutException("deepseek-runtime did not finish within 2 minutes.");
        }
        _ = stdout.Result;
        return (process.ExitCode, stderr.Result);
    }

    [Theory]
    [InlineData("needs a CUDA --device", "--device", "cpu")]
    [InlineData("\"tensor-cores\" is not one of graphs, grouped-mm, int4, nccl", "--sections", "graphs,tensor-cores")]
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
