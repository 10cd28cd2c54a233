using System.Net;
using System.Text;
using DeepSeek.Api.Tests.Backend;
using DeepSeek.Api.Tests.Infrastructure;
using DeepSeek.Runtime.Serving;

namespace DeepSeek.Api.Tests.OpenAi;

/// <summary>Overload, drain, loading and disconnects, each on its own server.</summary>
public sealed class LifecycleTests
{
    private static StringContent ChatBody(bool stream, int maxTokens) => new(
        $$"""{"model":"deepseek-test","messages":[{"role":"user","content":"hi"}],"max_tokens":{{maxTokens}},"stream":{{(stream ? "true" : "false")}}}""",
        Encoding.UTF8, "application/json");

    [Fact]
    public async Task Full_queue_is_429_with_retry_after_and_serving_resumes()
    {
        var backend = new TestBackend { MaxRunning = 1, MaxQueued = 0, TokenDelay = TimeSpan.FromMilliseconds(50) };
        await using var server = await RunningServer.StartAsync(backend);
        using var busy = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = ChatBody(stream: true, maxTokens: 400) };
        using var holding = await server.Http.SendAsync(busy, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, holding.StatusCode);

        using var refused = await server.Http.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), ChatBody(stream: false, maxTokens: 2));
        var error = await BadInputTests.AssertOpenAiErrorAsync(refused, 429, null, "queue full");
        Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
        Assert.Equal(TimeSpan.FromSeconds(2), refused.Headers.RetryAfter?.Delta);

        holding.Dispose();
        await backend.FirstCancellation.Task.WaitAsync(TimeSpan.FromSeconds(10));
        for (var attempt = 0; attempt < 100 && backend.GetLoad().Running > 0; attempt++) await Task.Delay(20);
        using var served = await server.Http.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), ChatBody(stream: false, maxTokens: 2));
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
    }

    [Fact]
    public async Task Draining_is_503()
    {
        await using var server = await RunningServer.StartAsync();
        server.Readiness.MarkDraining();
        using var response = await server.Http.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), ChatBody(stream: false, maxTokens: 2));
        var error = await BadInputTests.AssertOpenAiErrorAsync(response, 503, null, "draining");
        Assert.Equal("draining", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Not_ready_until_warm_up_completes()
    {
        await using var server = await RunningServer.StartAsync(warmUp: false);
        using (var ready = await server.Http.GetAsync(new Uri("/ready", UriKind.Relative)))
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        using (var loading = await server.Http.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), ChatBody(stream: false, maxTokens: 2)))
            await BadInputTests.AssertOpenAiErrorAsync(loading, 503, null, "loading");

        server.Backend.WarmUpGate.SetResult();
        await server.WaitReadyAsync();
        using var after = await server.Http.GetAsync(new Uri("/ready", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task A_failed_warm_up_turns_the_replica_failed_and_stops_the_host()
    {
        await using var server = await RunningServer.StartAsync(warmUp: false);
        var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.App.Lifetime.ApplicationStopping.Register(() => stopping.TrySetResult());

        server.Backend.WarmUpGate.SetException(new InvalidOperationException("CUDA error: out of memory"));

        await stopping.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(ReadinessState.Failed, server.Readiness.State);
    }

    [Fact]
    public async Task Client_disconnect_cancels_generation_in_the_backend()
    {
        var backend = new TestBackend { TokenDelay = TimeSpan.FromMilliseconds(20) };
        await using var server = await RunningServer.StartAsync(backend);
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = ChatBody(stream: true, maxTokens: 400) })
        using (var response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            var stream = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[256];
            Assert.True(await stream.ReadAsync(buffer) > 0);
        }
        var cancelled = await backend.FirstCancellation.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.StartsWith("test-", cancelled, StringComparison.Ordinal);
        for (var attempt = 0; attempt < 100 && backend.GetLoad().Running > 0; attempt++) await Task.Delay(20);
        Assert.Equal(0, backend.GetLoad().Running);
    }
}
