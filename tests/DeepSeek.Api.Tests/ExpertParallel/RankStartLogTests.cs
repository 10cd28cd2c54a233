using DeepSeek.Api.Tests.Infrastructure;

namespace DeepSeek.Api.Tests.ExpertParallel;

/// <summary>
/// Issue #27 item 9: a rank other than the leader serves no OpenAI API and no Inference service, and
/// its start log says what it does serve instead (the Experts listener, probes, gRPC health) rather
/// than the leader's line with "the API is open". One real <c>serve</c> process, rank 1 of a two-rank
/// group whose leader never starts (a rank turns ready once its shard is loaded).
/// </summary>
public sealed class RankStartLogTests
{
    [Fact]
    public async Task A_rank_says_it_serves_the_experts_listener_and_no_api()
    {
        var tokenFile = Path.GetTempFileName();
        await File.WriteAllTextAsync(tokenFile, "rank-start-log-token\n");
        var expertPort = FreePort.Next();
        try
        {
            await using var rank = await ServeProcess.StartAsync("--rank", "1", "--world-size", "2",
                "--peers", $"127.0.0.1:{FreePort.Next()},127.0.0.1:{expertPort}", "--expert-port", $"{expertPort}",
                "--expert-transport", "grpc", "--group-token-file", tokenFile);
            // Logged when the host has started, which may be just after /ready first answered.
            await Eventually.HoldsAsync(() => Task.FromResult(rank.Log.Contains("Listening on", StringComparison.Ordinal)), TimeSpan.FromSeconds(30), "the rank logged its listeners");
            var log = rank.Log;

            Assert.Contains($"expert-parallel rank 1 of 2: h2c port {expertPort} (deepseek.runtime.v1.Experts", log, StringComparison.Ordinal);
            Assert.Contains("No OpenAI API or Inference service here", log, StringComparison.Ordinal);
            Assert.DoesNotContain("OpenAI API /v1", log, StringComparison.Ordinal);
            Assert.DoesNotContain("the API is open", log, StringComparison.Ordinal);
            Assert.Contains("DeepSeek runtime ", log, StringComparison.Ordinal);
            Assert.Contains("CPU intra-op threads: ", log, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(tokenFile);
        }
    }
}
