using DeepSeek.Operator.Hosting;

namespace DeepSeek.Operator.Tests.Hosting;

/// <summary>What /readyz answers and says.</summary>
public sealed class HealthStateTests
{
    /// <summary>Issue 28, defect 3: a leader whose renewals fail is not ready, and its body said "watches synced".</summary>
    [Fact]
    public void A_leader_whose_lease_renewals_fail_says_so()
    {
        var health = new HealthState();
        health.SetLeading(true);
        health.MarkSynced();
        Assert.True(health.Ready);
        Assert.Equal("leader: watches synced", health.Describe());

        health.SetLeaseProblem("500 InternalServerError: etcdserver: request timed out");
        Assert.False(health.Ready);
        Assert.Equal("leader: renewing the lease fails: 500 InternalServerError: etcdserver: request timed out", health.Describe());

        health.SetLeaseProblem(null);
        Assert.Equal("leader: watches synced", health.Describe());
    }
}
