using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSeek.Gateway.Tests.EndToEnd;
using DeepSeek.Gateway.Tests.Infrastructure;
using DeepSeek.Gateway.Upstream;
using k8s;
using Microsoft.Extensions.DependencyInjection;
using static DeepSeek.Gateway.Tests.Infrastructure.Requests;

namespace DeepSeek.Gateway.Tests.InCluster;

/// <summary>
/// The gateway in a cluster (the in-process API server): DeepSeekModels of the watched namespaces published
/// under their served names, routed to their ready pods, split by spec.gateway.weight.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class DiscoveryTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;
    private FakeUpstream _a = null!;
    private FakeUpstream _b = null!;
    private FakeUpstream _c = null!;
    private RunningGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        _cluster = await TestCluster.StartAsync();
        _a = await FakeUpstream.StartAsync();
        _b = await FakeUpstream.StartAsync();
        _c = await FakeUpstream.StartAsync();
        _gateway = await RunningGateway.StartAsync("""
            listen: {host: 127.0.0.1, port: 8080}
            cluster:
              namespaces: [team-a, team-b]
              models: {holdSeconds: 60, routing: round-robin}
            """, _cluster.Gateway);
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _a.DisposeAsync();
        await _b.DisposeAsync();
        await _c.DisposeAsync();
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task AModelIsPublishedUnderItsServedNameAndARequestHeldForItIsRoutedWhenItsPodTurnsReady()
    {
        using (var before = await _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("chat"))))
        {
            Assert.Equal(HttpStatusCode.NotFound, before.StatusCode);
            Assert.Equal("model_not_found", (await ErrorAsync(before)).GetProperty("code").GetString());
        }

        await _cluster.CreateModelAsync("team-a", "chat-v1", servedName: "chat");
        await WaitListedAsync("chat");
        await _cluster.CreatePodAsync("team-a", "chat-v1", "chat-v1-abc", _a.Url, ready: false);
        // Nothing ready: the request is held (holdSeconds 60) until the kubelet reports the pod Ready.
        var held = _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("chat")));
        await _cluster.SetPodReadyAsync("team-a", "chat-v1-abc", ready: true);

        using var response = await held;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(_a.Url, Header(response, "x-deepseek-endpoint"));
        Assert.Equal("team-a/chat-v1", Header(response, "x-deepseek-variant"));
        // The runtime is sent the name it serves (the served name), and answers with it.
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("chat", body.RootElement.GetProperty("model").GetString());
        Assert.Equal(1, _a.Requests);
    }

    [Fact]
    public async Task ModelsSharingAServedNameAcrossNamespacesSplitByGatewayWeightAndAWeightOfZeroTakesOneOut()
    {
        await _cluster.CreateModelAsync("team-a", "ab-1", servedName: "ab", weight: 75);
        await _cluster.CreateModelAsync("team-b", "ab-2", servedName: "ab", weight: 25);
        await _cluster.CreatePodAsync("team-a", "ab-1", "ab-1-x", _b.Url, ready: true);
        await _cluster.CreatePodAsync("team-b", "ab-2", "ab-2-x", _c.Url, ready: true);
        await WaitForAsync(() => Variant("ab", "team-a/ab-1")?.Endpoints.Count == 1 && Variant("ab", "team-b/ab-2")?.Endpoints.Count == 1, "both variants of ab with their ready pod");

        const int total = 400;
        var counts = await SplitAsync("ab", total);
        Assert.Equal(total, counts.Values.Sum());
        // 25% of 400 is 100; the bounds are five standard deviations (8.7) either side, so the test does not flake.
        Assert.InRange(counts.GetValueOrDefault("team-b/ab-2"), 57, 143);
        Assert.Equal(counts.GetValueOrDefault("team-b/ab-2"), _c.Requests);

        await _cluster.PatchModelSpecAsync("team-b", "ab-2", new JsonObject { ["gateway"] = new JsonObject { ["weight"] = 0 } });
        await WaitForAsync(() => Variant("ab", "team-b/ab-2")?.Weight == 0, "ab-2's weight of 0 in the gateway's table");
        var after = await SplitAsync("ab", 50);
        Assert.Equal(50, after.GetValueOrDefault("team-a/ab-1"));
    }

    [Fact]
    public async Task OnlyTheWatchedNamespacesArePublishedAndOnlyThoseAreRead()
    {
        await _cluster.CreateModelAsync("team-c", "elsewhere");
        await _cluster.CreatePodAsync("team-c", "elsewhere", "elsewhere-x", _a.Url, ready: true);
        await _cluster.CreateModelAsync("team-b", "solo");
        await _cluster.CreatePodAsync("team-b", "solo", "solo-x", _b.Url, ready: true);
        await WaitListedAsync("solo");

        using (var solo = await _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("solo"))))
            Assert.Equal(HttpStatusCode.OK, solo.StatusCode);
        using (var elsewhere = await _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("elsewhere"))))
            Assert.Equal(HttpStatusCode.NotFound, elsewhere.StatusCode);
        // Every read the gateway made was of a watched namespace: nothing cluster-wide, nothing of team-c.
        var reads = _cluster.Server.Requests.Where(r => r.User == "gateway").ToList();
        Assert.NotEmpty(reads);
        Assert.All(reads, r => Assert.Contains(r.Namespace, new[] { "team-a", "team-b" }));
        Assert.All(reads, r => Assert.True(r.Status is 200, $"{r.Verb} {r.Resource} in {r.Namespace}: {r.Status}"));
    }

    [Fact]
    public async Task APodThatStopsBeingReadyOrIsDeletedIsNoLongerRouted()
    {
        await _cluster.CreateModelAsync("team-a", "pair");
        await _cluster.CreatePodAsync("team-a", "pair", "pair-1", _a.Url, ready: true);
        await _cluster.CreatePodAsync("team-a", "pair", "pair-2", _b.Url, ready: true);
        await WaitForAsync(() => Variant("pair", "team-a/pair")?.Endpoints.Count == 2, "both pods of pair");

        await _cluster.SetPodReadyAsync("team-a", "pair-1", ready: false);
        await WaitForAsync(() => Variant("pair", "team-a/pair")?.Endpoints.Count == 1, "pair-1 out of the table");
        var routed = await SplitAsync("pair", 10, header: "x-deepseek-endpoint");
        Assert.Equal(10, routed.GetValueOrDefault(_b.Url));

        // Read the answer of the delete as neither a Pod nor a Status (the test server answers a Status, a real one the Pod).
        using (await _cluster.Admin.CustomObjects.DeleteNamespacedCustomObjectWithHttpMessagesAsync<JsonElement>("", "v1", "team-a", "pods", "pair-2")) { }
        await WaitForAsync(() => Variant("pair", "team-a/pair")?.Endpoints.Count == 0, "pair-2 out of the table");
        Assert.NotNull(_gateway.Services.GetRequiredService<ModelTable>().Find("pair"));
    }

    private GatewayVariant? Variant(string model, string variant) =>
        _gateway.Services.GetRequiredService<ModelTable>().Find(model)?.Variants.SingleOrDefault(v => v.Name == variant);

    private async Task<Dictionary<string, int>> SplitAsync(string model, int requests, string header = "x-deepseek-variant")
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < requests; i++)
        {
            using var response = await _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat(model)));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var value = Header(response, header);
            counts[value] = counts.GetValueOrDefault(value) + 1;
        }
        return counts;
    }

    private async Task WaitListedAsync(string model) =>
        await Eventually.HoldsAsync(async () =>
        {
            using var response = await _gateway.Http.GetAsync(new Uri("/v1/models/" + model, UriKind.Relative));
            return response.StatusCode == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(20), $"the gateway to publish {model}");

    private static Task WaitForAsync(Func<bool> condition, string what) =>
        Eventually.HoldsAsync(() => Task.FromResult(condition()), TimeSpan.FromSeconds(20), what);
}
