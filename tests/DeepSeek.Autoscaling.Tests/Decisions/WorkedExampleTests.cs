using DeepSeek.Operator.Autoscaling;
using Microsoft.Extensions.Time.Testing;
using static DeepSeek.Autoscaling.Tests.Infrastructure.Replicas;

namespace DeepSeek.Autoscaling.Tests.Decisions;

/// <summary>The worked example of docs/autoscaling.md, poll by poll: the document's numbers hold.</summary>
public class WorkedExampleTests
{
    private const string Model = "serving/deepseek-v3";

    private static List<ReplicaLoad> Observe(int second, int replicas) => second switch
    {
        0 => [Ready("r0", 30, running: 16), Ready("r1", 26, running: 16)],
        15 => [Ready("r0", 24, running: 16), Ready("r1", 26, running: 16), .. Loading(2, replicas)],
        30 => [.. Enumerable.Range(0, 6).Select(i => Ready($"r{i}", i < 3 ? 2 : 1, running: 10)), .. Loading(6, replicas)],
        < 600 => Enumerable.Range(0, replicas).Select(i => Ready($"r{i}", i < 4 ? 4 : 3, running: 16)).ToList(),
        _ => Enumerable.Range(0, replicas).Select(i => Ready($"r{i}", 0)).ToList(),
    };

    private static IEnumerable<ReplicaLoad> Loading(int from, int to) =>
        Enumerable.Range(from, to - from).Select(i => NotReady($"r{i}"));

    [Fact]
    public void Timeline_matches_the_document()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var store = new ScalingHistoryStore(clock);
        var policy = Policy(max: 8);
        var replicas = 2;
        var log = new Dictionary<int, ScalingDecision>();
        for (var second = 0; second <= 990; second += 15)
        {
            var decision = store.Evaluate(Model, policy, replicas, Observe(second, replicas));
            log[second] = decision;
            if (decision.DesiredReplicas != replicas)
            {
                store.RecordScale(Model, replicas, decision.DesiredReplicas);
                replicas = decision.DesiredReplicas;
            }
            clock.Advance(TimeSpan.FromSeconds(15));
        }

        Assert.Equal((14, 6, ScalingLimit.ScaleUpLimit), (log[0].Recommendation, log[0].DesiredReplicas, log[0].Limit));
        Assert.Equal((13, 8, ScalingLimit.TooManyReplicas), (log[15].Recommendation, log[15].DesiredReplicas, log[15].Limit));
        Assert.Equal((3, 8), (log[30].Recommendation, log[30].DesiredReplicas));
        Assert.Equal((7, 8, ScalingLimit.None), (log[300].Recommendation, log[300].DesiredReplicas, log[300].Limit));
        Assert.Equal((7, 8, ScalingLimit.ReplicasBusy), (log[315].Recommendation, log[315].DesiredReplicas, log[315].Limit));
        Assert.Single(log[315].ReplicasToDrain);
        Assert.Equal(8, log[585].DesiredReplicas);
        Assert.Equal((7, ScalingLimit.None), (log[600].DesiredReplicas, log[600].Limit));
        Assert.Equal(7, log[870].DesiredReplicas);
        Assert.Equal([6, 5, 4, 3, 2, 1], new[] { 885, 900, 915, 930, 945, 960 }.Select(s => log[s].DesiredReplicas));
        Assert.Equal((1, ScalingLimit.TooFewReplicas), (log[975].DesiredReplicas, log[975].Limit));
    }
}
