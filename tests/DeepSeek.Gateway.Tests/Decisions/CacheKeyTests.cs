using System.Text;
using System.Text.Json;
using DeepSeek.Gateway.Caching;
using DeepSeek.Gateway.Configuration;
using Microsoft.Extensions.Time.Testing;

namespace DeepSeek.Gateway.Tests.Decisions;

public sealed class CacheKeyTests
{
    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement;

    [Theory]
    [InlineData("""{"model":"m","temperature":0}""", true)]
    [InlineData("""{"model":"m","temperature":0.0,"seed":null}""", true)]
    [InlineData("""{"model":"m","seed":7}""", true)]
    [InlineData("""{"model":"m","temperature":0.7,"seed":7}""", true)]
    [InlineData("""{"model":"m"}""", false)]
    [InlineData("""{"model":"m","temperature":0.2}""", false)]
    [InlineData("""{"model":"m","temperature":0,"stream":true}""", true)]
    [InlineData("""{"model":"m","temperature":1,"stream":true}""", false)]
    [InlineData("""{"model":"m","temperature":"0"}""", false)]
    public void OnlyDeterministicRequestsAreCacheable(string body, bool cacheable) =>
        Assert.Equal(cacheable, CacheKey.IsCacheable(J(body)));

    [Fact]
    public void AStreamIsKeptOnlyWhenItRanToItsEndWithoutAnError()
    {
        const string events = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n";
        Assert.True(CacheKey.IsKeepable(true, Encoding.UTF8.GetBytes(events + "data: [DONE]\n\n")));
        Assert.True(CacheKey.IsKeepable(true, Encoding.UTF8.GetBytes(events + "data: [DONE]\r\n\r\n")));
        Assert.False(CacheKey.IsKeepable(true, Encoding.UTF8.GetBytes(events)));
        Assert.False(CacheKey.IsKeepable(true, Encoding.UTF8.GetBytes(events + "data: {\"error\":{\"message\":\"step failed\"}}\n\ndata: [DONE]\n\n")));
        // A JSON answer is kept as it is; streamed or not is what the request asked.
        Assert.True(CacheKey.IsKeepable(false, "{}"u8));
        Assert.False(CacheKey.IsKeepable(true, "{}"u8));
        // Different keys for the same request streamed and not.
        Assert.NotEqual(CacheKey.For("k", "/v1/completions", J("""{"model":"m","temperature":0}""")),
            CacheKey.For("k", "/v1/completions", J("""{"model":"m","temperature":0,"stream":true}""")));
    }

    [Fact]
    public void TheSameRequestSpelledDifferentlyHasOneKey()
    {
        var a = CacheKey.For("team-a", "/v1/chat/completions", J("""{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}"""));
        var b = CacheKey.For("team-a", "/v1/chat/completions", J("""{ "messages" : [ {"content":"hi", "role":"user"} ], "temperature":0, "model":"m" }"""));
        Assert.Equal(a, b);
        Assert.Equal(64, a.Length);
    }

    [Fact]
    public void ScopePathAndEveryFieldAreInTheKey()
    {
        var body = J("""{"model":"m","temperature":0,"prompt":"hi"}""");
        var key = CacheKey.For("team-a", "/v1/completions", body);
        Assert.NotEqual(key, CacheKey.For("team-b", "/v1/completions", body));
        Assert.NotEqual(key, CacheKey.For("team-a", "/v1/chat/completions", body));
        Assert.NotEqual(key, CacheKey.For("team-a", "/v1/completions", J("""{"model":"m","temperature":0,"prompt":"hi!"}""")));
        Assert.NotEqual(key, CacheKey.For("team-a", "/v1/completions", J("""{"model":"m2","temperature":0,"prompt":"hi"}""")));
        Assert.Equal("""{"a":[{"b":1,"c":2}],"z":true}""", CacheKey.Normalise(J("""{"z":true,"a":[{"c":2,"b":1}]}""")));
        Assert.Equal(CacheKey.Normalise(J("""{"t":0,"n":100}""")), CacheKey.Normalise(J("""{"t":0.0,"n":1e2}""")));
        Assert.NotEqual(CacheKey.Normalise(J("""{"t":0}""")), CacheKey.Normalise(J("""{"t":0.5}""")));
    }

    [Fact]
    public void EntriesExpireByTheGatewaysClock()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        using var cache = new ResponseCache(new CacheConfig { TtlSeconds = 10, MaxEntries = 5 }, time);
        cache.Put("k", "application/json", [1, 2], "a", null);
        time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal([1, 2], cache.Get("k")!.Body);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Null(cache.Get("k"));
    }
}
