using DeepSeek.Runtime.Experts;

namespace DeepSeek.Runtime.Tests.Experts;

public class GroupReadinessTests
{
    [Fact]
    public void The_group_is_ready_only_when_every_rank_is()
    {
        var ready = GroupReadiness.Of([new RankState(1, "b:1", true, null), new RankState(2, "c:1", true, null)]);
        Assert.True(ready.Ready);
        Assert.Empty(ready.MissingRanks);
        Assert.Equal("all 3 ranks ready", ready.Message);
    }

    [Fact]
    public void A_missing_rank_is_named_with_its_address_and_reason()
    {
        var readiness = GroupReadiness.Of([
            new RankState(2, "c:50052", false, "Unavailable: connection refused"),
            new RankState(1, "b:50052", true, null),
        ]);
        Assert.False(readiness.Ready);
        Assert.Equal([2], readiness.MissingRanks);
        Assert.Contains("rank 2 (c:50052): Unavailable: connection refused", readiness.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("rank 1", readiness.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1, 200)]
    [InlineData(2, 400)]
    [InlineData(5, 3200)]
    [InlineData(6, 5000)]
    [InlineData(100, 5000)]
    public void Reconnects_back_off_from_200_ms_to_5_s(int failures, int milliseconds) =>
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), Backoff.Delay(failures));
}
