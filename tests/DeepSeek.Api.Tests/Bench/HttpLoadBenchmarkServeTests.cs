using DeepSeek.Api.Tests.Infrastructure;
using DeepSeek.Api.Tests.Serve;
using DeepSeek.Runtime.Bench;

namespace DeepSeek.Api.Tests.Bench;

/// <summary><c>bench --url</c>'s load generator against the real <c>serve</c> process on the embedded tiny model.</summary>
public sealed class HttpLoadBenchmarkServeTests(SharedServe shared) : IClassFixture<SharedServe>
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Every_request_succeeds_with_exactly_the_requested_tokens(int concurrency)
    {
        const int requestsPerClient = 3, promptTokens = 12, outputTokens = 6;
        var baseUrl = new Uri(shared.Server.HttpUrl + "/");
        using var http = new HttpClient(HttpLoadBenchmark.Handler(concurrency)) { Timeout = TimeSpan.FromMinutes(2) };
        var model = await HttpLoadBenchmark.FirstModelAsync(http, baseUrl, null, CancellationToken.None);
        Assert.Equal(ServeProcess.ModelName, model);
        var benchmark = new HttpLoadBenchmark(http, baseUrl, null, model, 256, seed: 5);
        var done = 0;

        var run = await benchmark.RunLevelAsync(concurrency, requestsPerClient, promptTokens, outputTokens, () => Interlocked.Increment(ref done), CancellationToken.None);

        Assert.Equal(concurrency * requestsPerClient, run.Requests.Count);
        Assert.Equal(run.Requests.Count, done);
        Assert.All(run.Requests, r =>
        {
            Assert.True(r.Succeeded, $"{r.Failure}: {r.Detail}");
            Assert.Equal(outputTokens, r.OutputTokens);
            Assert.Equal(outputTokens, r.UsageCompletionTokens);
            Assert.Equal(outputTokens - 1, r.ItlMs.Count);
        });
        var row = HttpBenchResult.From(run);
        Assert.Empty(row.Failures);
        Assert.Equal(run.Requests.Count, row.Succeeded);
        Assert.True(row.OutputTokensPerSecond > 0);
        Assert.InRange(row.TtftP50Ms, 0, row.TtftP90Ms);
        Assert.InRange(row.TtftP90Ms, row.TtftP50Ms, row.TtftP99Ms);
        Assert.InRange(row.ItlP50Ms, 0, row.ItlP90Ms);
        Assert.InRange(row.ItlP90Ms, row.ItlP50Ms, row.ItlP99Ms);
        Assert.InRange(row.E2eP50Ms, row.TtftP50Ms, row.E2eP90Ms);
        Assert.InRange(row.E2eP90Ms, row.E2eP50Ms, row.E2eP99Ms);
    }
}
