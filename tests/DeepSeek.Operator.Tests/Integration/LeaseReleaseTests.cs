using DeepSeek.Operator.Leadership;
using DeepSeek.Operator.Tests.Support;
using k8s;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>docs/operator.md: "the lease is released on stop", so a standby need not wait for it to expire.</summary>
public sealed class LeaseReleaseTests
{
    [Fact]
    public async Task A_leader_that_stops_gives_up_its_lease()
    {
        await using var harness = await OperatorHarness.StartAsync();
        var lease = new LeaderElectionSettings { LeaseName = "release-test", LeaseDuration = TimeSpan.FromSeconds(30), RetryPeriod = TimeSpan.FromMilliseconds(200) };
        var (stop, run) = harness.StartOperator("operator-a", lease, leaderElect: true);
        await Eventually.HoldsAsync(async () => (await harness.Admin.CoordinationV1.ReadNamespacedLeaseAsync("release-test", "default")).Spec.HolderIdentity == "operator-a",
            TimeSpan.FromSeconds(20), "operator-a holds the lease");

        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20));

        var released = await harness.Admin.CoordinationV1.ReadNamespacedLeaseAsync("release-test", "default");
        Assert.Equal("", released.Spec.HolderIdentity);
        Assert.Equal(1, released.Spec.LeaseDurationSeconds);
    }
}
