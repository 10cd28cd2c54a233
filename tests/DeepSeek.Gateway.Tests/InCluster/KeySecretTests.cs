using System.Net;
using DeepSeek.Gateway.Keys;
using DeepSeek.Gateway.Tests.EndToEnd;
using DeepSeek.Gateway.Tests.Infrastructure;
using k8s;
using static DeepSeek.Gateway.Tests.Infrastructure.Requests;

namespace DeepSeek.Gateway.Tests.InCluster;

/// <summary>Keys from the Secrets of cluster.keySecrets: closed until read, 401/403 by them, reloaded when the Secret changes, revoked when it goes.</summary>
[Collection(GatewayCollection.Name)]
public sealed class KeySecretTests : IAsyncLifetime
{
    private const string Namespace = "deepseek-system";
    private const string SecretName = "gateway-keys";
    private const string First = "sk-first-key";
    private const string Second = "sk-second-key";

    private TestCluster _cluster = null!;
    private FakeUpstream _runtime = null!;
    private RunningGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        _cluster = await TestCluster.StartAsync();
        _cluster.KeySecrets.Add($"{Namespace}/{SecretName}");
        _runtime = await FakeUpstream.StartAsync();
        _gateway = await RunningGateway.StartAsync($$"""
            listen: {host: 127.0.0.1, port: 8080}
            cluster:
              keySecrets: [{namespace: {{Namespace}}, name: {{SecretName}}}]
              models: {holdSeconds: 30}
            """, _cluster.Gateway);
        foreach (var model in new[] { "chat", "other" })
        {
            await _cluster.CreateModelAsync("default", model);
            await _cluster.CreatePodAsync("default", model, model + "-x", _runtime.Url, ready: true);
        }
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _runtime.DisposeAsync();
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task KeysComeFromTheSecretAreReloadedWhenItChangesAndAreRevokedWhenItIsDeleted()
    {
        // No Secret yet: closed, not open.
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync("chat", key: null));

        await _cluster.PutKeySecretAsync(Namespace, SecretName, $"- {{id: team-a, sha256: {KeyTable.HashHex(First)}, models: [chat]}}");
        await WaitStatusAsync("chat", First, HttpStatusCode.OK, "the first key to be read from the Secret");
        using (var missing = await _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("chat"))))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
            Assert.Equal("invalid_api_key", (await ErrorAsync(missing)).GetProperty("code").GetString());
        }
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync("chat", Second));
        using (var scoped = await _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("other"), First)))
        {
            Assert.Equal(HttpStatusCode.Forbidden, scoped.StatusCode);
            Assert.Equal("model_not_allowed", (await ErrorAsync(scoped)).GetProperty("code").GetString());
        }

        // Rotation: the Secret now holds the second key (wider scope) instead of the first.
        await _cluster.PutKeySecretAsync(Namespace, SecretName, $"- {{id: team-a, sha256: {KeyTable.HashHex(Second)}, models: [chat, other]}}");
        await WaitStatusAsync("other", Second, HttpStatusCode.OK, "the rotated key to be read");
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync("chat", First));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync("chat", Second));

        await _cluster.Admin.CoreV1.DeleteNamespacedSecretAsync(SecretName, Namespace);
        await WaitStatusAsync("chat", Second, HttpStatusCode.Unauthorized, "the deleted Secret's key to be revoked");
        // The gateway read the Secret by name only (a metadata.name field selector, which the server's RBAC asks
        // for as the chart's resourceNames do), never refused.
        var reads = _cluster.Server.Requests.Where(r => r.User == "gateway" && r.Resource == "secrets").ToList();
        Assert.NotEmpty(reads);
        Assert.All(reads, r => Assert.True(r.Namespace == Namespace && r.Status == 200, $"{r.Verb} secrets in {r.Namespace}: {r.Status}"));
    }

    [Fact]
    public async Task ASecretWhoseNewContentIsNotUsableKeepsItsLastGoodKeys()
    {
        await _cluster.PutKeySecretAsync(Namespace, SecretName, $"- {{id: team-a, sha256: {KeyTable.HashHex(First)}}}");
        await WaitStatusAsync("chat", First, HttpStatusCode.OK, "the first key to be read from the Secret");

        // A broken edit (not a hash), then a later good one: the first key works until the good edit replaces it.
        await _cluster.PutKeySecretAsync(Namespace, SecretName, "- {id: team-a, sha256: not-a-hash}");
        Assert.Equal(HttpStatusCode.OK, await StatusAsync("chat", First));
        await _cluster.PutKeySecretAsync(Namespace, SecretName, $"- {{id: team-b, sha256: {KeyTable.HashHex(Second)}}}");
        await WaitStatusAsync("chat", Second, HttpStatusCode.OK, "the good edit to be read");
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync("chat", First));
    }

    private async Task<HttpStatusCode> StatusAsync(string model, string? key)
    {
        using var response = await _gateway.Http.SendAsync(Post("/v1/chat/completions", Chat(model), key));
        return response.StatusCode;
    }

    private Task WaitStatusAsync(string model, string key, HttpStatusCode status, string what) =>
        Eventually.HoldsAsync(async () => await StatusAsync(model, key) == status, TimeSpan.FromSeconds(20), what);
}
