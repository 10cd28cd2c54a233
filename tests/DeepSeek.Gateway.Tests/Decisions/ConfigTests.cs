using System.Diagnostics;
using DeepSeek.Gateway.Configuration;
using DeepSeek.Gateway.Tests.Infrastructure;

namespace DeepSeek.Gateway.Tests.Decisions;

public sealed class ConfigTests
{
    /// <summary>Design §7's example, with a real hash.</summary>
    internal const string DesignExample = """
        listen: {host: 127.0.0.1, port: 8080}
        models:
          - name: chat                 # the "model" clients send
            timeoutSeconds: 60
            holdSeconds: 30
            routing: prefix
            cache: {ttlSeconds: 300, maxEntries: 10000}
            variants:
              - {name: a, weight: 80, endpoints: ["http://127.0.0.1:18001", "http://127.0.0.1:18002"]}
              - {name: b, weight: 20, endpoints: ["http://127.0.0.1:18003"], servedName: chat-v2}
        keys:
          - {id: team-a, sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b, models: ["chat"], requestsPerMinute: 600, tokensPerMinute: 200000}
        audit: {path: /dev/stdout}
        """;

    [Fact]
    public void TheDesignsExampleParses()
    {
        var config = ConfigFile.Parse(DesignExample);
        var chat = Assert.Single(config.Models);
        Assert.Equal("prefix", chat.Routing);
        Assert.Equal(30, chat.HoldSeconds);
        Assert.Equal("chat-v2", chat.Variants[1].ServedName);
        Assert.Equal(200000, config.Keys[0].TokensPerMinute);
        Assert.Equal(GatewayConfig.DefaultMaxRequestBytes, config.MaxRequestBytes);
    }

    [Fact]
    public void EveryProblemIsNamedInOneMessage()
    {
        var e = Assert.Throws<GatewayConfigException>(() => ConfigFile.Parse("""
            listen: {host: not-an-ip, port: 70000}
            maxRequestBytes: 0
            models:
              - name: chat
                timeoutSeconds: 0
                holdSeconds: -1
                routing: random
                cache: {ttlSeconds: 0, maxEntries: 0}
                variants:
                  - {name: a, weight: -1, endpoints: ["ftp://x", "http://h:1/path"]}
                  - {name: a, weight: 0, endpoints: []}
              - name: chat
                variants: []
            keys:
              - {id: k, sha256: abc, models: [nope], requestsPerMinute: -5}
              - {id: k, sha256: abc}
            audit: {path: ""}
            """));
        foreach (var place in new[]
                 {
                     "listen.host", "listen.port", "maxRequestBytes", "models[0].timeoutSeconds", "models[0].holdSeconds", "models[0].routing",
                     "models[0].cache.ttlSeconds", "models[0].cache.maxEntries", "models[0].variants[0].weight", "models[0].variants[0].endpoints[0]",
                     "models[0].variants[0].endpoints[1]", "models[0].variants[1].name", "models[0].variants[1].endpoints", "models[0].variants: the weights",
                     "models[1].name", "models[1].variants", "keys[0].sha256", "keys[0].models", "keys[0].requestsPerMinute", "keys[1].id", "audit.path",
                 })
            Assert.Contains(place, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InAClusterTheModelsAreDiscoveredWithTheSettingsOfClusterModels()
    {
        var config = ConfigFile.Parse("""
            listen: {host: 0.0.0.0, port: 8080}
            cluster:
              namespaces: [team-a, team-b]
              keySecrets: [{namespace: deepseek-system, name: gateway-keys}]
              models: {holdSeconds: 300, routing: prefix, cache: {ttlSeconds: 60}}
            """);
        var cluster = Assert.IsType<ClusterConfig>(config.Cluster);
        Assert.Empty(config.Models);
        Assert.Equal(["team-a", "team-b"], cluster.Namespaces);
        Assert.Equal("deepseek-system/gateway-keys", Assert.Single(cluster.KeySecrets).ToString());
        Assert.True(cluster.ScaleFromZero);
        var model = cluster.Models.For("chat", []);
        Assert.Equal((300.0, "prefix", 60.0, 60.0), (model.HoldSeconds, model.Routing, model.Cache!.TtlSeconds, model.TimeoutSeconds));

        // Settings left out are a model's defaults, but with a hold long enough for a pod to start (scale from zero).
        Assert.Equal(ClusterConfig.DefaultHoldSeconds, ConfigFile.Parse("cluster: {}").Cluster!.Models.HoldSeconds);
        var partial = ConfigFile.Parse("cluster: {models: {routing: round-robin}}").Cluster!.Models;
        Assert.Equal((ClusterConfig.DefaultHoldSeconds, "round-robin", 60.0), (partial.HoldSeconds, partial.Routing, partial.TimeoutSeconds));
    }

    [Fact]
    public void AClusterConfigurationNamesEveryProblemToo()
    {
        var e = Assert.Throws<GatewayConfigException>(() => ConfigFile.Parse("""
            cluster:
              namespaces: [Team_A, team-b, team-b]
              keySecrets: [{namespace: "", name: keys}, {namespace: ns, name: ""}]
              models: {holdSeconds: -1, routing: random}
            models:
              - {name: m, variants: [{name: a, endpoints: ["http://h:1"]}]}
            keys:
              - {id: k, sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b, models: [anything]}
            """));
        foreach (var place in new[]
                 {
                     "cluster.namespaces[0]", "cluster.namespaces[2]", "cluster.keySecrets[0].namespace", "cluster.keySecrets[1].name",
                     "cluster.models.holdSeconds", "cluster.models.routing", "models: leave it out", "keys: give keys here or in cluster.keySecrets",
                 })
            Assert.Contains(place, e.Message, StringComparison.Ordinal);
        // A key's models are not checked against a file that lists none: they are the cluster's served names.
        Assert.DoesNotContain("keys[0].models", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("models: [{name: m, variants: [{name: a, endpoints: [\"http://h:1\"]}]}]\nunknownField: 1", "unknownField")]
    [InlineData("models: [{name: m, timeoutSeconds: soon, variants: [{name: a, endpoints: [\"http://h:1\"]}]}]", "line 1")]
    [InlineData("", "empty")]
    [InlineData("models: []", "at least one model")]
    public void ShapeMistakesAreSaid(string yaml, string said) =>
        Assert.Contains(said, Assert.Throws<GatewayConfigException>(() => ConfigFile.Parse(yaml)).Message, StringComparison.Ordinal);

    [Fact]
    public async Task TheExecutableExitsTwoOnABadConfigSayingWhy()
    {
        var path = Path.Combine(Path.GetTempPath(), $"gateway-bad-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, "models:\n  - name: m\n    routing: random\n    variants: []\n");
        try
        {
            var (code, _, stderr) = await ChildProcess.RunAsync(new ProcessStartInfo("dotnet", [Repo.GatewayDll, "--config", path]), TimeSpan.FromSeconds(30));
            Assert.Equal(2, code);
            Assert.Contains("models[0].routing", stderr, StringComparison.Ordinal);
            Assert.Contains("models[0].variants", stderr, StringComparison.Ordinal);
            var (missing, _, usage) = await ChildProcess.RunAsync(new ProcessStartInfo("dotnet", [Repo.GatewayDll]), TimeSpan.FromSeconds(30));
            Assert.Equal(2, missing);
            Assert.Contains("--config FILE", usage, StringComparison.Ordinal);

            // --kubeconfig goes with a cluster: file only, and must name a file that exists.
            await File.WriteAllTextAsync(path, "models: [{name: m, variants: [{name: a, endpoints: [\"http://127.0.0.1:1\"]}]}]\n");
            var (standalone, _, notCluster) = await ChildProcess.RunAsync(new ProcessStartInfo("dotnet", [Repo.GatewayDll, "--config", path, "--kubeconfig", path]), TimeSpan.FromSeconds(30));
            Assert.Equal(2, standalone);
            Assert.Contains("--kubeconfig is for a file with cluster:", notCluster, StringComparison.Ordinal);
            await File.WriteAllTextAsync(path, "cluster: {}\n");
            var nowhere = Path.Combine(Path.GetTempPath(), $"no-kubeconfig-{Guid.NewGuid():N}");
            var (noCluster, _, unreachable) = await ChildProcess.RunAsync(new ProcessStartInfo("dotnet", [Repo.GatewayDll, "--config", path, "--kubeconfig", nowhere]), TimeSpan.FromSeconds(30));
            Assert.Equal(2, noCluster);
            Assert.Contains($"kubeconfig '{nowhere}' does not exist", unreachable, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
