using DeepSeek.Operator.Autoscaling;
using static DeepSeek.Autoscaling.Tests.Infrastructure.Replicas;

namespace DeepSeek.Autoscaling.Tests.Decisions;

/// <summary>
/// Single polls against hand-computed HPA arithmetic (target 4 waiting per replica unless said).
/// </summary>
public class QueueDepthAutoscalerTests
{
    private static readonly DateTimeOffset Now = new(2025, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private static ScalingDecision Decide(AutoscalingPolicy policy, int current, IReadOnlyList<ReplicaLoad> replicas, ScalingHistory? history = null) =>
        QueueDepthAutoscaler.Decide(policy, current, replicas, history ?? ScalingHistory.Empty, Now);

    [Fact]
    public void Queue_at_target_keeps_the_count()
    {
        var decision = Decide(Policy(), 3, ReadyWith(4, 4, 4));

        Assert.Equal(3, decision.DesiredReplicas);
        Assert.Equal(ScalingDirection.None, decision.Direction);
        Assert.False(decision.IsLimited);
        Assert.Equal("DesiredWithinRange", decision.LimitReason);
        Assert.Equal(12, decision.Load.Waiting);
        Assert.Equal(3, decision.Recommendation);
    }

    [Theory]
    // 13 / (3 × 4) = 1.083 and 11 / 12 = 0.917: inside the 0.1 band, no change.
    [InlineData(13, 3)]
    [InlineData(11, 3)]
    // 14 / 12 = 1.167: outside, ceil(14 / 4) = 4.
    [InlineData(14, 4)]
    // 10 / 12 = 0.833: outside, ceil(10 / 4) = 3 = current.
    [InlineData(10, 3)]
    // 6 / 12 = 0.5: ceil(6 / 4) = 2.
    [InlineData(6, 2)]
    public void Recommendation_is_ceil_of_waiting_over_target_outside_the_tolerance_band(int totalWaiting, int recommended)
    {
        var decision = Decide(Policy(downWindow: 0), 3, Spread(3, totalWaiting));

        Assert.Equal(recommended, decision.Recommendation);
        Assert.Equal(recommended, decision.DesiredReplicas);
    }

    [Fact]
    public void Spike_scales_up_at_most_by_the_scale_up_rate()
    {
        // 80 waiting on 2 replicas → ceil(80 / 4) = 20; from 2 the rate allows max(2 + 4, 2 × 200 %) = 6.
        var decision = Decide(Policy(max: 30), 2, ReadyWith(40, 40));

        Assert.Equal(20, decision.Recommendation);
        Assert.Equal(6, decision.DesiredReplicas);
        Assert.Equal(ScalingDirection.Up, decision.Direction);
        Assert.Equal(ScalingLimit.ScaleUpLimit, decision.Limit);
        Assert.Contains("scale-up rate", decision.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Percent_rule_wins_for_larger_counts()
    {
        // From 8: max(8 + 4, 8 × 200 %) = 16.
        var decision = Decide(Policy(max: 100), 8, Spread(8, 400));

        Assert.Equal(100, decision.Recommendation);
        Assert.Equal(16, decision.DesiredReplicas);
    }

    [Fact]
    public void Changes_applied_within_the_period_count_against_the_rate()
    {
        // 2 → 6 applied 10 s ago: the period started at 2, so 6 is already the most allowed.
        var history = new ScalingHistory([], [new ScaleEvent(Now.AddSeconds(-10), 2, 6)]);
        var decision = Decide(Policy(max: 30), 6, Spread(6, 80), history);

        Assert.Equal(6, decision.DesiredReplicas);
        Assert.Equal(ScalingDirection.None, decision.Direction);
        Assert.Equal(ScalingLimit.ScaleUpLimit, decision.Limit);

        // 15 s later that change is outside the period: from 6, max(10, 12) = 12.
        var later = QueueDepthAutoscaler.Decide(Policy(max: 30), 6, Spread(6, 80), history, Now.AddSeconds(5));
        Assert.Equal(12, later.DesiredReplicas);
    }

    [Fact]
    public void Max_bounds_a_scale_up_and_says_so()
    {
        var decision = Decide(Policy(max: 5), 3, ReadyWith(40, 40, 40));

        Assert.Equal(5, decision.DesiredReplicas);
        Assert.Equal(ScalingLimit.TooManyReplicas, decision.Limit);
        Assert.True(decision.IsLimited);
        Assert.Equal("TooManyReplicas", decision.LimitReason);
    }

    [Fact]
    public void At_max_with_more_demand_stays_and_is_limited()
    {
        var decision = Decide(Policy(max: 5), 5, Spread(5, 200));

        Assert.Equal(5, decision.DesiredReplicas);
        Assert.Equal(ScalingDirection.None, decision.Direction);
        Assert.Equal(ScalingLimit.TooManyReplicas, decision.Limit);
    }

    [Fact]
    public void Min_bounds_a_scale_down_and_says_so()
    {
        var policy = Policy(min: 2, downWindow: 0) with { ScaleDownRate = new ScalingRateLimit(0, 100, 15) };
        var decision = Decide(policy, 4, ReadyWith(0, 0, 0, 0));

        Assert.Equal(0, decision.Recommendation);
        Assert.Equal(2, decision.DesiredReplicas);
        Assert.Equal(ScalingDirection.Down, decision.Direction);
        Assert.Equal(ScalingLimit.TooFewReplicas, decision.Limit);
    }

    [Fact]
    public void Scale_down_removes_one_replica_per_period_by_default()
    {
        var decision = Decide(Policy(downWindow: 0), 4, ReadyWith(0, 0, 0, 0));

        Assert.Equal(3, decision.DesiredReplicas);
        Assert.Equal(ScalingLimit.ScaleDownLimit, decision.Limit);
        Assert.Equal(["r3"], decision.ReplicasToRemove);
    }

    [Theory]
    [InlineData(8, 5, ScalingDirection.Down, ScalingLimit.TooManyReplicas)]
    [InlineData(1, 2, ScalingDirection.Up, ScalingLimit.TooFewReplicas)]
    public void A_count_outside_the_bounds_is_brought_inside_first(int current, int desired, ScalingDirection direction, ScalingLimit limit)
    {
        var decision = Decide(Policy(min: 2, max: 5), current, Spread(current, 4 * current));

        Assert.Equal(desired, decision.DesiredReplicas);
        Assert.Equal(direction, decision.Direction);
        Assert.Equal(limit, decision.Limit);
        Assert.Null(decision.Recommendation);
    }

    [Fact]
    public void Groups_are_counted_as_replicas_and_removed_whole_from_the_highest_ordinal()
    {
        // Four groups of a multi-pod model, read at their leaders; nothing waiting anywhere.
        var groups = Enumerable.Range(0, 4).Select(k => Ready($"m-g{k}", 0)).ToList();
        var policy = Policy(downWindow: 0) with { ScaleDownRate = new ScalingRateLimit(2, 0, 15) };

        var decision = Decide(policy, 4, groups);

        Assert.Equal(2, decision.DesiredReplicas);
        Assert.Equal(["m-g3", "m-g2"], decision.ReplicasToRemove);
    }

    [Fact]
    public void Groups_bound_by_max_in_groups_not_pods()
    {
        // 2 groups with 20 waiting each: ceil(40 / 4) = 10 groups wanted, max 3 groups.
        var decision = Decide(Policy(max: 3), 2, [Ready("m-g0", 20), Ready("m-g1", 20)]);

        Assert.Equal(10, decision.Recommendation);
        Assert.Equal(3, decision.DesiredReplicas);
        Assert.Equal(ScalingLimit.TooManyReplicas, decision.Limit);
    }

    [Fact]
    public void Unreachable_replica_counts_at_target_when_the_others_would_scale_down()
    {
        // Ready: 6 waiting on 2 (0.75 of target). The unreachable one counts as 4 waiting:
        // 10 / 12 = 0.83 → ceil(10 / 4) = 3 = current. As zero it would have been ceil(6 / 4) = 2.
        IReadOnlyList<ReplicaLoad> replicas = [Ready("r0", 3), Ready("r1", 3), Unreachable("r2")];

        var decision = Decide(Policy(downWindow: 0), 3, replicas);

        Assert.Equal(3, decision.DesiredReplicas);
        Assert.Equal(ScalingDirection.None, decision.Direction);
        Assert.Equal(1, decision.Load.Unreachable);
        Assert.Contains("unreachable counted at target", decision.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Unreachable_replica_counts_as_empty_when_scaling_up()
    {
        // Ready: 20 waiting on 2 (2.5 × target). With the unreachable one as 0: ceil(20 / 4) = 5,
        // not the 6 that counting it at target would give.
        IReadOnlyList<ReplicaLoad> replicas = [Ready("r0", 10), Ready("r1", 10), Unreachable("r2")];

        var decision = Decide(Policy(), 3, replicas);

        Assert.Equal(5, decision.DesiredReplicas);
        Assert.Equal(ScalingDirection.Up, decision.Direction);
    }

    [Fact]
    public void Replicas_the_operator_expected_but_did_not_observe_count_as_unreachable()
    {
        var decision = Decide(Policy(downWindow: 0), 3, [Ready("r0", 3), Ready("r1", 3)]);

        Assert.Equal(1, decision.Load.Unreachable);
        Assert.Equal(3, decision.DesiredReplicas);
    }

    [Fact]
    public void No_replica_reachable_holds_the_count_and_says_why()
    {
        IReadOnlyList<ReplicaLoad> replicas = [Unreachable("r0"), NotReady("r1"), Unreachable("r2")];

        var decision = Decide(Policy(downWindow: 0), 3, replicas);

        Assert.Equal(3, decision.DesiredReplicas);
        Assert.Equal(ScalingDirection.None, decision.Direction);
        Assert.Null(decision.Recommendation);
        Assert.Contains("no replica reported its queue (1 not ready, 2 unreachable)", decision.Reason, StringComparison.Ordinal);
        Assert.Contains("r0: connection refused", decision.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Loading_replicas_hold_a_small_scale_up_instead_of_flipping_it()
    {
        // Ready: 10 waiting on 2 (1.25 × target), 2 more loading. Counting them as empty gives
        // 10 / 16 = 0.625, the other side of 1: keep 4 (the HPA's rule), rather than ceil(10/4) = 3.
        IReadOnlyList<ReplicaLoad> replicas = [Ready("r0", 5), Ready("r1", 5), NotReady("r2"), NotReady("r3")];

        var decision = Decide(Policy(downWindow: 0), 4, replicas);

        Assert.Equal(4, decision.DesiredReplicas);
        Assert.Equal(ScalingDirection.None, decision.Direction);
    }

    [Fact]
    public void Replicas_with_running_requests_are_not_removed()
    {
        // Nothing waiting, but r0 and r3 still generate: only r1 and r2 may go.
        IReadOnlyList<ReplicaLoad> replicas = [Ready("r0", 0, running: 2), Ready("r1", 0), Ready("r2", 0), Ready("r3", 0, running: 1)];
        var policy = Policy(downWindow: 0) with { ScaleDownRate = new ScalingRateLimit(0, 100, 15) };

        var decision = Decide(policy, 4, replicas);

        Assert.Equal(2, decision.DesiredReplicas);
        Assert.Equal(ScalingLimit.ReplicasBusy, decision.Limit);
        Assert.Equal(["r2", "r1"], decision.ReplicasToRemove);
        Assert.DoesNotContain("r0", decision.ReplicasToRemove);
        Assert.DoesNotContain("r3", decision.ReplicasToRemove);
        // The scale-down wanted 1: the next to go, once drained, is r3 (1 running) before r0 (2).
        Assert.Equal(["r3"], decision.ReplicasToDrain);
    }

    [Fact]
    public void All_replicas_busy_blocks_the_scale_down()
    {
        var policy = Policy(downWindow: 0);
        IReadOnlyList<ReplicaLoad> replicas = [Ready("r0", 0, running: 1), Ready("r1", 0, running: 3)];

        var decision = Decide(policy, 2, replicas);

        Assert.Equal(2, decision.DesiredReplicas);
        Assert.Equal(ScalingDirection.None, decision.Direction);
        Assert.Equal(ScalingLimit.ReplicasBusy, decision.Limit);
        Assert.Empty(decision.ReplicasToRemove);
        Assert.Equal(["r0"], decision.ReplicasToDrain);
    }

    [Fact]
    public void Unreachable_replicas_are_not_removed_because_their_requests_are_unknown()
    {
        var policy = Policy(downWindow: 0) with { ScaleDownRate = new ScalingRateLimit(0, 100, 15) };
        // Ready 0 waiting; the unreachable one counts at target: ceil(4 / 4) = 1.
        IReadOnlyList<ReplicaLoad> replicas = [Ready("r0", 0), Unreachable("r1"), Ready("r2", 0)];

        var decision = Decide(policy, 3, replicas);

        Assert.Equal(1, decision.DesiredReplicas);
        Assert.Equal(["r2", "r0"], decision.ReplicasToRemove);
        Assert.DoesNotContain("r1", decision.ReplicasToRemove);
    }

    [Fact]
    public void Idle_replicas_that_are_not_ready_go_first()
    {
        var policy = Policy(downWindow: 0) with { ScaleDownRate = new ScalingRateLimit(1, 0, 15) };
        IReadOnlyList<ReplicaLoad> replicas = [Ready("r0", 0), NotReady("r1"), Ready("r2", 0)];

        var decision = Decide(policy, 3, replicas);

        Assert.Equal(["r1"], decision.ReplicasToRemove);
    }

    [Fact]
    public void Disabled_autoscaling_leaves_the_count_alone()
    {
        var decision = Decide(Policy() with { Enabled = false }, 2, ReadyWith(40, 40));

        Assert.Equal(2, decision.DesiredReplicas);
        Assert.Equal(ScalingDirection.None, decision.Direction);
        Assert.Contains("disabled", decision.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Stabilization_windows_take_min_going_up_and_max_going_down()
    {
        var history = new ScalingHistory(
        [
            new ScalingRecommendation(Now.AddSeconds(-60), 7),
            new ScalingRecommendation(Now.AddSeconds(-30), 5),
        ], []);

        // Up window 45 s sees 5: ceil(40 / 4) = 10 is held to 5.
        var up = Decide(Policy(upWindow: 45), 4, Spread(4, 40), history);
        Assert.Equal(10, up.Recommendation);
        Assert.Equal(5, up.DesiredReplicas);
        Assert.Contains("scale-up stabilization window", up.Reason, StringComparison.Ordinal);

        // Down window 90 s sees 7 and 5: 0 is held to 7 > current 6, so nothing moves.
        var down = Decide(Policy(downWindow: 90), 6, Spread(6, 0), history);
        Assert.Equal(6, down.DesiredReplicas);
        Assert.Equal(ScalingDirection.None, down.Direction);
    }

    [Fact]
    public void Invalid_policy_is_rejected_with_the_fields_named()
    {
        var policy = Policy(min: 3, max: 2, target: 0);

        var error = Assert.Throws<ArgumentException>(() => Decide(policy, 2, ReadyWith(1, 1)));

        Assert.Contains("autoscaling.maxReplicas (2) must be at least minReplicas (3)", error.Message, StringComparison.Ordinal);
        Assert.Contains("autoscaling.targetQueueDepth must be a number above 0", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Defaults_match_the_documented_policy()
    {
        var policy = new AutoscalingPolicy { MaxReplicas = 4, TargetQueueDepth = 8 };

        Assert.Empty(policy.Validate());
        Assert.Equal((1, 0, 300, 15, 0.1), (policy.MinReplicas, policy.ScaleUpStabilizationSeconds, policy.ScaleDownStabilizationSeconds, policy.PollIntervalSeconds, policy.Tolerance));
        Assert.Equal(new ScalingRateLimit(4, 100, 15), policy.ScaleUpRate);
        Assert.Equal(new ScalingRateLimit(1, 0, 15), policy.ScaleDownRate);
        Assert.Equal(TimeSpan.FromSeconds(300), policy.HistoryRetention);
    }
}
