using System.Net;
using DeepSeek.Gateway.Tests.EndToEnd;
using DeepSeek.Gateway.Tests.Infrastructure;
using static DeepSeek.Gateway.Tests.Infrastructure.Requests;

namespace DeepSeek.Gateway.Tests.InCluster;

/// <summary>
/// Scale from zero: requests for a model at 0 replicas patch its scale subresource to 1, once however many
/// are held, and are released when the pod the operator then creates turns ready (or get 503 after holdSeconds).
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class ScaleFromZeroTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;
    private FakeUpstream _runtime = null!;

    public async Task InitializeAsync()
    {
        _cluster = await TestCluster.StartAsync();
        _runtime = await FakeUpstream.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _runtime.DisposeAsync();
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task HeldRequestsScaleAModelAtZeroToOneWithOnePatchAndAreReleasedWhenItsPodIsReady()
    {
        await using var gateway = await StartGatewayAsync(holdSeconds: 120);
        await _cluster.CreateModelAsync("default", "sleepy", replicas: 0);
        await WaitListedAsync(gateway, "sleepy");

        var held = Enumerable.Range(0, 3).Select(_ => gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("sleepy")))).ToList();
        await Eventually.HoldsAsync(() => Task.FromResult(_cluster.StoredReplicas("default", "sleepy") == 1), TimeSpan.FromSeconds(20),
            "the gateway to scale sleepy to 1 through its scale subresource");
        Assert.All(held, request => Assert.False(request.IsCompleted, "a request completed before any pod of sleepy existed"));

        // The operator would now create the pod; here the test plays it and the kubelet.
        await _cluster.CreatePodAsync("default", "sleepy", "sleepy-abc", _runtime.Url, ready: false);
        await _cluster.SetPodReadyAsync("default", "sleepy-abc", ready: true);
        foreach (var request in held)
        {
            using var response = await request;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(_runtime.Url, Header(response, "x-deepseek-endpoint"));
        }
        var patches = _cluster.ScalePatches("default", "sleepy");
        Assert.Equal(200, Assert.Single(patches).Status);
    }

    [Fact]
    public async Task WithNoReadyPodWithinHoldSecondsTheRequestIs503AndOnlyAModelAtZeroIsPatched()
    {
        await using var gateway = await StartGatewayAsync(holdSeconds: 1);
        await _cluster.CreateModelAsync("default", "stuck", replicas: 0);
        // Replicas wanted, pod still loading: the hold waits for it, but there is nothing to scale.
        await _cluster.CreateModelAsync("default", "loading", replicas: 1);
        await _cluster.CreatePodAsync("default", "loading", "loading-abc", _runtime.Url, ready: false);
        await WaitListedAsync(gateway, "stuck");
        await WaitListedAsync(gateway, "loading");

        foreach (var model in new[] { "stuck", "loading" })
        {
            using var response = await gateway.Http.SendAsync(Post("/v1/chat/completions", Chat(model)));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Equal("unavailable", (await ErrorAsync(response)).GetProperty("code").GetString());
            Assert.True(response.Headers.RetryAfter is not null, "503 carries Retry-After");
        }
        Assert.Equal(1, _cluster.StoredReplicas("default", "stuck"));
        Assert.Single(_cluster.ScalePatches("default", "stuck"));
        Assert.Empty(_cluster.ScalePatches("default", "loading"));
        Assert.Equal(0, _runtime.Requests);
    }

    [Fact]
    public async Task AModelScaledByItsOwnerMeanwhileIsNotOverridden()
    {
        await using var gateway = await StartGatewayAsync(holdSeconds: 1);
        await _cluster.CreateModelAsync("default", "owned", replicas: 0);
        await WaitListedAsync(gateway, "owned");
        // The gateway's view of the models stops here (its watch is cut and cannot come back), and the owner
        // sets 3 replicas: the gateway still sees 0, and its patch, conditional on the version it saw, must fail
        // rather than bring the model down to 1.
        _cluster.Server.InjectFault("list", "deepseekmodels", 503, count: 100_000);
        _cluster.Server.InjectFault("watch", "deepseekmodels", 503, count: 100_000);
        _cluster.Server.Store.DropWatches();
        await _cluster.PatchModelSpecAsync("default", "owned", new System.Text.Json.Nodes.JsonObject { ["replicas"] = 3 });

        using var response = await gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("owned")));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(3, _cluster.StoredReplicas("default", "owned"));
        Assert.Equal(409, Assert.Single(_cluster.ScalePatches("default", "owned")).Status);
    }

    private Task<RunningGateway> StartGatewayAsync(double holdSeconds) => RunningGateway.StartAsync($$"""
        listen: {host: 127.0.0.1, port: 8080}
        cluster:
          models: {holdSeconds: {{holdSeconds}}}
        """, _cluster.Gateway);

    private static async Task WaitListedAsync(RunningGateway gateway, string model) =>
        await Eventually.HoldsAsync(async () =>
        {
            using var response = await gateway.Http.GetAsync(new Uri("/v1/models/" + model, UriKind.Relative));
            return response.StatusCode == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(20), $"the gateway to publish {model}");
}
