using DeepSeek.Operator.Autoscaling;
using Microsoft.Extensions.Time.Testing;
using static DeepSeek.Autoscaling.Tests.Infrastructure.Replicas;

namespace DeepSeek.Autoscaling.Tests.Decisions;

/// <summary>
/// The reconciler's loop in miniature: every poll interval the store evaluates, the count changes
/// to the decision and the change is recorded. The clock is fake; times are seconds from start.
/// </summary>
public class ScalingOverTimeTests
{
    private const string Model = "serving/deepseek-v3";

    private sealed class Simulation(AutoscalingPolicy policy, int replicas)
    {
        public FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        public int Replicas { get; private set; } = replicas;
        public List<(int Second, ScalingDecision Decision)> Log { get; } = [];
        public ScalingHistoryStore Store { get; private set; } = null!;
        private int second;

        public Simulation Start()
        {
            Store = new ScalingHistoryStore(Clock);
            return this;
        }

        /// <summary>Polls every pollIntervalSeconds for <paramref name="seconds"/>, with this total queue.</summary>
        public Simulation Run(int seconds, Func<int, int> totalWaiting)
        {
            for (var end = second + seconds; second < end; second += policy.PollIntervalSeconds)
            {
                var decision = Store.Evaluate(Model, policy, Replicas, Spread(Replicas, totalWaiting(Replicas)));
                Log.Add((second, decision));
                if (decision.DesiredReplicas != Replicas)
                {
                    Store.RecordScale(Model, Replicas, decision.DesiredReplicas);
                    Replicas = decision.DesiredReplicas;
                }
                Clock.Advance(policy.PollInterval);
            }
            return this;
        }

        public IEnumerable<(int Second, int Replicas)> Changes() =>
            Log.Where(e => e.Decision.Direction != ScalingDirection.None).Select(e => (e.Second, e.Decision.DesiredReplicas));
    }

    [Fact]
    public void Steady_load_never_changes_the_count()
    {
        var sim = new Simulation(Policy(), 3).Start().Run(900, _ => 12);

        Assert.Equal(60, sim.Log.Count);
        Assert.All(sim.Log, e => Assert.Equal(ScalingDirection.None, e.Decision.Direction));
        Assert.Equal(3, sim.Replicas);
    }

    [Fact]
    public void Spike_scales_up_at_the_first_poll_without_an_up_window_bounded_by_the_rate()
    {
        var sim = new Simulation(Policy(max: 20), 2).Start()
            .Run(60, _ => 8)
            .Run(60, _ => 80);

        // 80 waiting wants 20: 2 → 6 at the spike's first poll (s 60), then 6 → 12 and 12 → 20
        // as each change leaves the 15 s rate period.
        Assert.Equal([(60, 6), (75, 12), (90, 20)], sim.Changes());
        Assert.Equal(ScalingLimit.ScaleUpLimit, sim.Log.Single(e => e.Second == 60).Decision.Limit);
    }

    [Fact]
    public void Spike_with_an_up_window_scales_up_once_the_window_has_seen_only_high_recommendations()
    {
        var policy = Policy(upWindow: 30);
        var sim = new Simulation(policy, 2).Start()
            .Run(60, _ => 8)
            .Run(60, _ => 24);

        // The spike is first seen at s 60. At s 75 the window (45, 75] holds only high
        // recommendations, so the scale-up lands then: within one poll interval plus the window.
        var first = sim.Changes().First();
        Assert.Equal((75, 6), first);
        Assert.True(first.Second <= 60 + policy.PollIntervalSeconds + policy.ScaleUpStabilizationSeconds);
        var held = sim.Log.Single(e => e.Second == 60).Decision;
        Assert.Equal(ScalingDirection.None, held.Direction);
        Assert.Equal(6, held.Recommendation);
        Assert.Contains("scale-up stabilization window", held.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Oscillation_inside_the_tolerance_band_does_not_flap()
    {
        // 4 replicas, target 4: totals between 15 and 17 are within ±10 % of 16.
        int[] totals = [15, 17, 16, 17, 15, 16];
        var poll = 0;
        var sim = new Simulation(Policy(downWindow: 0), 4).Start().Run(900, _ => totals[poll++ % totals.Length]);

        Assert.Empty(sim.Changes());
        Assert.All(sim.Store.Get(Model).Recommendations, r => Assert.Equal(4, r.Replicas));
    }

    [Fact]
    public void Oscillation_outside_the_band_scales_up_once_and_the_down_window_holds_it()
    {
        // Alternating demand for 6 and 3 replicas: up to 6 once, never back down while the window
        // still holds a recommendation of 6.
        var poll = 0;
        var sim = new Simulation(Policy(), 4).Start().Run(600, _ => poll++ % 2 == 0 ? 24 : 12);

        Assert.Equal([(0, 6)], sim.Changes());
    }

    [Fact]
    public void Scale_down_waits_for_the_window_then_steps_by_the_rate()
    {
        var sim = new Simulation(Policy(), 4).Start()
            .Run(300, _ => 16)
            .Run(420, _ => 0);

        // The load stops at s 300. The last recommendation of 4 (s 285) leaves the 300 s window
        // at s 585: one replica per 15 s from there, down to minReplicas.
        Assert.Equal([(585, 3), (600, 2), (615, 1)], sim.Changes());
        Assert.All(sim.Log.Where(e => e.Second is >= 300 and < 585), e => Assert.Equal(4, e.Decision.DesiredReplicas));
        var atMin = sim.Log.Last().Decision;
        Assert.Equal(1, atMin.DesiredReplicas);
        Assert.Equal(ScalingLimit.TooFewReplicas, atMin.Limit);
    }

    [Fact]
    public void History_keeps_only_the_longest_window()
    {
        var sim = new Simulation(Policy(downWindow: 120), 3).Start().Run(600, _ => 12);

        var history = sim.Store.Get(Model);
        var now = sim.Clock.GetUtcNow();
        Assert.NotEmpty(history.Recommendations);
        Assert.All(history.Recommendations, r => Assert.True(now - r.At < TimeSpan.FromSeconds(120)));
        // Polls at s 495 … 585 are within 120 s of s 600.
        Assert.Equal(7, history.Recommendations.Count);
    }

    [Fact]
    public void Unreachable_replicas_hold_without_recording_a_recommendation()
    {
        var clock = new FakeTimeProvider();
        var store = new ScalingHistoryStore(clock);

        var decision = store.Evaluate(Model, Policy(), 2, [Unreachable("r0"), Unreachable("r1")]);

        Assert.Equal(2, decision.DesiredReplicas);
        Assert.Null(decision.Recommendation);
        Assert.Empty(store.Get(Model).Recommendations);
    }

    [Fact]
    public void Next_poll_is_due_one_interval_after_the_last()
    {
        var clock = new FakeTimeProvider();
        var store = new ScalingHistoryStore(clock);
        var policy = Policy();

        Assert.Equal(TimeSpan.Zero, store.UntilNextPoll(Model, policy));
        store.Evaluate(Model, policy, 2, ReadyWith(4, 4));
        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(TimeSpan.FromSeconds(10), store.UntilNextPoll(Model, policy));
        clock.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal(TimeSpan.Zero, store.UntilNextPoll(Model, policy));

        store.Forget(Model);
        Assert.Empty(store.Get(Model).Recommendations);
    }
}
