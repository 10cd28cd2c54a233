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
        }
        finally
        {
            File.Delete(path);
        }
    }
}
