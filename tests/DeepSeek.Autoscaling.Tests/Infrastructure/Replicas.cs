using DeepSeek.Operator.Autoscaling;

namespace DeepSeek.Autoscaling.Tests.Infrastructure;

/// <summary>Short ways to write observations and policies in tests.</summary>
internal static class Replicas
{
    public static ReplicaLoad Ready(string name, int waiting, int running = 0) =>
        ReplicaLoad.Ready(name, new LoadSnapshot(waiting, running));

    public static ReplicaLoad NotReady(string name, int waiting = 0, int running = 0) =>
        ReplicaLoad.NotReady(name, new LoadSnapshot(waiting, running));

    public static ReplicaLoad Unreachable(string name) => ReplicaLoad.Unreachable(name, "connection refused");

    /// <summary><paramref name="waiting"/>.Length ready replicas r0, r1, … with those queues.</summary>
    public static IReadOnlyList<ReplicaLoad> ReadyWith(params int[] waiting) =>
        waiting.Select((w, i) => Ready($"r{i}", w)).ToList();

    /// <summary><paramref name="count"/> ready replicas sharing <paramref name="totalWaiting"/> as evenly as integers allow.</summary>
    public static IReadOnlyList<ReplicaLoad> Spread(int count, int totalWaiting) =>
        Enumerable.Range(0, count)
            .Select(i => Ready($"r{i}", totalWaiting / count + (i < totalWaiting % count ? 1 : 0)))
            .ToList();

    public static AutoscalingPolicy Policy(
        int min = 1, int max = 10, double target = 4, int upWindow = 0, int downWindow = 300) => new()
    {
        MinReplicas = min,
        MaxReplicas = max,
        TargetQueueDepth = target,
        ScaleUpStabilizationSeconds = upWindow,
        ScaleDownStabilizationSeconds = downWindow,
    };
}
