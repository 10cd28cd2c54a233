using System.Net;
using DeepSeek.Gateway.Tests.Infrastructure;
using static DeepSeek.Gateway.Tests.Infrastructure.Requests;

namespace DeepSeek.Gateway.Tests.EndToEnd;

/// <summary>A gateway in front of runtime stand-ins that hang, stream on cue, load slowly or are not there at all.</summary>
[Collection(GatewayCollection.Name)]
public sealed class FakeUpstreamTests : IAsyncLifetime
{
    private FakeUpstream _fast = null!;
    private FakeUpstream _loading = null!;
    private FakeUpstream _neverReady = null!;
    private FakeUpstream _resetting = null!;
    private FakeUpstream _draining = null!;
    private FakeUpstream _queued = null!;
    private RunningGateway _gateway = null!;
    private string _dead = "";

    public async Task InitializeAsync()
    {
        _fast = await FakeUpstream.StartAsync();
        _loading = await FakeUpstream.StartAsync();
        _loading.Ready = false;
        _neverReady = await FakeUpstream.StartAsync();
        _neverReady.Ready = false;
        _resetting = await FakeUpstream.StartAsync();
        _resetting.ResetConnections = true;
        _draining = await FakeUpstream.StartAsync();
        _draining.ApiUnavailable = true;
        // A runtime whose own queue is long (traffic from elsewhere), beside _fast, which reports an empty one.
        _queued = await FakeUpstream.StartAsync();
        _queued.ReportedWaiting = 40;
        _fast.ReportedWaiting = 0;
        // A port nothing listens on: connections are refused.
        _dead = $"http://127.0.0.1:{FreePort.Next()}";
        _gateway = await RunningGateway.StartAsync($$"""
            listen: {host: 127.0.0.1, port: 8080}
            models:
              - {name: slow, timeoutSeconds: 1, variants: [{name: a, endpoints: ["{{_fast.Url}}"]}]}
              - {name: stream, timeoutSeconds: 60, variants: [{name: a, endpoints: ["{{_fast.Url}}"]}]}
              - {name: retry, routing: round-robin, variants: [{name: a, endpoints: ["{{_dead}}", "{{_resetting.Url}}", "{{_fast.Url}}"]}]}
              - {name: drain, routing: round-robin, variants: [{name: a, endpoints: ["{{_draining.Url}}", "{{_fast.Url}}"]}]}
              - {name: held, holdSeconds: 120, variants: [{name: a, endpoints: ["{{_loading.Url}}"]}]}
              - {name: never, holdSeconds: 0.5, variants: [{name: a, endpoints: ["{{_neverReady.Url}}"]}]}
              - {name: loaded, routing: least-load, variants: [{name: a, endpoints: ["{{_queued.Url}}", "{{_fast.Url}}"]}]}
              - {name: ab, routing: least-load, variants: [{name: a, weight: 1, endpoints: ["{{_neverReady.Url}}"]}, {name: b, weight: 1, endpoints: ["{{_fast.Url}}"], servedName: fast-b}]}
            """);
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _fast.DisposeAsync();
        await _loading.DisposeAsync();
        await _neverReady.DisposeAsync();
        await _resetting.DisposeAsync();
        await _draining.DisposeAsync();
        await _queued.DisposeAsync();
    }

    [Fact]
    public async Task LeastLoadWeighsTheQueueARuntimeReportsNotOnlyTheGatewaysOwnRequests()
    {
        // With the gateway's own counts alone (nothing in flight) the two would take turns; once it has read
        // the runtimes' /metrics, the one reporting 40 waiting is passed over every time.
        await Eventually.HoldsAsync(async () =>
        {
            using var response = await _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("loaded")));
            return Header(response, "x-deepseek-endpoint") == _fast.Url;
        }, TimeSpan.FromSeconds(20), "a request routed away from the runtime that reports a queue");
        var queuedBefore = _queued.Requests;
        for (var i = 0; i < 10; i++)
        {
            using var response = await _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("loaded")));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(_fast.Url, Header(response, "x-deepseek-endpoint"));
        }
        Assert.Equal(queuedBefore, _queued.Requests);
    }

    [Fact]
    public async Task AnUpstreamSilentPastTimeoutSecondsIs504AndIsCancelled()
    {
        var cancelledBefore = _fast.Cancelled;
        using var response = await _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("slow")));
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("timeout", (await ErrorAsync(response)).GetProperty("code").GetString());
        await Eventually.HoldsAsync(() => Task.FromResult(_fast.Cancelled > cancelledBefore), TimeSpan.FromSeconds(10), "the upstream to see the request cancelled");
    }

    [Fact]
    public async Task StreamsPassUnbufferedAndAClientThatLeavesCancelsTheUpstream()
    {
        var cancelledBefore = _fast.Cancelled;
        using (var request = Post("/v1/completions", """{"model":"stream","prompt":"hi","stream":true}"""))
        using (var response = await _gateway.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("a", Header(response, "x-deepseek-variant"));
            Assert.Equal(_fast.Url, Header(response, "x-deepseek-endpoint"));
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            // The upstream holds the rest of its stream: this line can only arrive if the gateway does not buffer.
            using var deadline = new CancellationTokenSource(TestTime.Budget(TimeSpan.FromSeconds(20)));
            var first = await reader.ReadLineAsync(deadline.Token);
            Assert.Contains("first", first, StringComparison.Ordinal);
        }
        // The response is disposed mid-stream: the client left.
        await Eventually.HoldsAsync(() => Task.FromResult(_fast.Cancelled > cancelledBefore), TimeSpan.FromSeconds(10), "the upstream to see the client's disconnect");
    }

    [Fact]
    public async Task AFailedConnectionIsRetriedOnAnotherEndpoint()
    {
        // Of three endpoints one refuses connections (left out once probed) and one drops them while its /ready says 200.
        for (var i = 0; i < 4; i++)
        {
            using var response = await _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("retry")));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(_fast.Url, Header(response, "x-deepseek-endpoint"));
        }
        Assert.True(_resetting.Requests > 0);
        var series = $"deepseek_gateway_upstream_errors_total{{otel_scope_name=\"DeepSeek.Gateway\",endpoint=\"{_resetting.Url}\",model=\"retry\",reason=\"connection\"}}";
        await Eventually.HoldsAsync(async () => (await _gateway.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative))).Contains(series, StringComparison.Ordinal),
            TimeSpan.FromSeconds(10), series);
    }

    [Fact]
    public async Task ARuntimes503IsNotPassedOnWhileAnotherEndpointCanAnswer()
    {
        for (var i = 0; i < 3; i++)
        {
            using var response = await _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("drain")));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(_fast.Url, Header(response, "x-deepseek-endpoint"));
        }
        Assert.True(_draining.Requests > 0);
        var series = $"deepseek_gateway_upstream_errors_total{{otel_scope_name=\"DeepSeek.Gateway\",endpoint=\"{_draining.Url}\",model=\"drain\",reason=\"unavailable\"}}";
        await Eventually.HoldsAsync(async () => (await _gateway.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative))).Contains(series, StringComparison.Ordinal),
            TimeSpan.FromSeconds(10), series);
    }

    [Fact]
    public async Task AHeldRequestIsReleasedWhenAnEndpointTurnsReady()
    {
        var probesBefore = _loading.ReadyProbes;
        var held = _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("held")));
        // Being held means asking /ready again and again; two more probes than before show it waits, not fails.
        await Eventually.HoldsAsync(() => Task.FromResult(_loading.ReadyProbes >= probesBefore + 3), TimeSpan.FromSeconds(20), "the held request to poll readiness");
        Assert.False(held.IsCompleted);
        _loading.Ready = true;
        using var response = await held.WaitAsync(TestTime.Budget(TimeSpan.FromSeconds(20)));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(_loading.Url, Header(response, "x-deepseek-endpoint"));
    }

    [Fact]
    public async Task NothingReadyWithinHoldSecondsIs503WithRetryAfter()
    {
        using var response = await _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("never")));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Equal("service_unavailable_error", (await ErrorAsync(response)).GetProperty("type").GetString());
    }

    [Fact]
    public async Task AVariantWithNothingReadyGivesItsShareToTheOtherWhichGetsItsServedName()
    {
        for (var i = 0; i < 6; i++)
        {
            using var response = await _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("ab")));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("b", Header(response, "x-deepseek-variant"));
            // The fake echoes the model it was sent.
            Assert.Contains("\"model\":\"fast-b\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }
}
