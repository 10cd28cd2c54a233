using DeepSeek.Gateway.Configuration;
using DeepSeek.Gateway.Keys;
using Microsoft.Extensions.Time.Testing;

namespace DeepSeek.Gateway.Tests.Decisions;

public sealed class KeyTests
{
    private static readonly KeyConfig TeamA = new() { Id = "team-a", Sha256 = KeyTable.HashHex("key-a"), Models = ["chat"] };
    private static readonly KeyConfig Everything = new() { Id = "ops", Sha256 = KeyTable.HashHex("key-ops").ToUpperInvariant() };

    [Fact]
    public void NoKeysConfiguredIsOpenToEveryModel()
    {
        var result = KeyCheck.Identify(new KeyTable([]), null);
        Assert.Equal(KeyVerdict.Open, result.Verdict);
        Assert.Equal("open", result.Label);
        Assert.True(KeyCheck.Allows(result.Key, "anything"));
    }

    [Theory]
    [InlineData(null, "Missing")]
    [InlineData("", "Missing")]
    [InlineData("Bearer ", "Missing")]
    [InlineData("Basic a2V5LWE=", "Missing")]
    [InlineData("Bearer key-b", "Unknown")]
    [InlineData("Bearer KEY-A", "Unknown")]
    [InlineData("Bearer key-a", "Known")]
    [InlineData("bearer  key-a ", "Known")]
    [InlineData("Bearer key-ops", "Known")]
    public void TheHeaderIsCheckedAgainstTheHashes(string? header, string verdict) =>
        Assert.Equal(verdict, KeyCheck.Identify(new KeyTable([TeamA, Everything]), header).Verdict.ToString());

    [Fact]
    public void AKeyMayUseItsModelsOnlyAndOneWithoutAListEveryModel()
    {
        Assert.True(KeyCheck.Allows(TeamA, "chat"));
        Assert.False(KeyCheck.Allows(TeamA, "other"));
        Assert.False(KeyCheck.Allows(TeamA, "Chat"));
        Assert.True(KeyCheck.Allows(Everything, "other"));
    }

    [Fact]
    public void RequestsPerMinuteRefuseUntilTheWindowTurns()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        using var limits = new KeyLimits(time);
        var key = new KeyConfig { Id = "k", Sha256 = new string('0', 64), RequestsPerMinute = 3 };
        for (var i = 0; i < 3; i++) Assert.True(limits.TryAcquire(key).Allowed);
        time.Advance(TimeSpan.FromSeconds(20));
        var refused = limits.TryAcquire(key);
        Assert.False(refused.Allowed);
        Assert.Equal(TimeSpan.FromSeconds(40), refused.RetryAfter);
        time.Advance(TimeSpan.FromSeconds(40));
        Assert.True(limits.TryAcquire(key).Allowed);
        // Another key has its own budget.
        Assert.True(limits.TryAcquire(new KeyConfig { Id = "other", RequestsPerMinute = 1 }).Allowed);
    }

    [Fact]
    public void TokensPerMinuteCountWhatResponsesUsed()
    {
        var time = new FakeTimeProvider();
        using var limits = new KeyLimits(time);
        var key = new KeyConfig { Id = "k", TokensPerMinute = 100 };
        Assert.True(limits.TryAcquire(key).Allowed);
        limits.AddTokens(key, 60);
        Assert.True(limits.TryAcquire(key).Allowed);
        limits.AddTokens(key, 60);
        var refused = limits.TryAcquire(key);
        Assert.False(refused.Allowed);
        Assert.Equal("tokens per minute", refused.What);
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.True(limits.TryAcquire(key).Allowed);
    }

    [Fact]
    public void AKeyWithoutLimitsIsNeverRefused()
    {
        using var limits = new KeyLimits(new FakeTimeProvider());
        for (var i = 0; i < 1000; i++) Assert.True(limits.TryAcquire(TeamA).Allowed);
        Assert.True(limits.TryAcquire(null).Allowed);
    }
}
