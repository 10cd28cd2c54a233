using System.Diagnostics;
using DeepSeek.Api.Tests.Infrastructure;

namespace DeepSeek.Api.Tests.ExpertParallel;

/// <summary>Expert-parallel settings that cannot work make <c>serve</c> exit 1 at start, saying what to set.</summary>
public sealed class ServeStartRefusalTests
{
    [Theory]
    [InlineData("the nccl transport on CPU", "needs CUDA devices", "--expert-transport", "nccl")]
    [InlineData("the nccl transport of a group on CPU", "--expert-transport grpc", "--expert-transport", "nccl", "--world-size", "2", "--peers", "127.0.0.1:1,127.0.0.1:2", "--rank", "1")]
    [InlineData("local ranks that do not divide the world", "multiple of --local-ranks", "--local-ranks", "2", "--world-size", "3", "--peers", "127.0.0.1:50052")]
    [InlineData("local ranks with one address per rank", "one address per pod", "--local-ranks", "2", "--world-size", "2", "--peers", "127.0.0.1:50052,127.0.0.1:50062")]
    public async Task Serve_refuses_at_start(string what, string message, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet", [ServeProcess.RuntimeDll, "serve", "--host", "127.0.0.1", "--http-port", $"{FreePort.Next()}", "--grpc-port", $"{FreePort.Next()}", .. arguments]);
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("DEEPSEEK_", StringComparison.Ordinal)).ToList()) start.Environment.Remove(name);
        start.Environment["DEEPSEEK_GROUP_TOKEN"] = "t";
        var (exitCode, stdout, stderr) = await ExternalTool.RunAsync(start, null, TimeSpan.FromSeconds(120));
        Assert.True(exitCode == 1, $"{what}: exit code {exitCode}:\n{stdout}\n{stderr}");
        Assert.Contains(message, stderr, StringComparison.Ordinal);
    }
}
