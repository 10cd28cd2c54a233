using DeepSeek.Contract;
using DeepSeek.Operator.Desired;
using k8s.Models;

namespace DeepSeek.Operator.Autoscaling;

/// <summary>
/// From a model's pods to the replicas that serve it (pure): the autoscaler reads their load, the gateway
/// routes to the ready ones. One pod per replica: every pod
/// of the Deployment that is not being deleted. Replica groups: the leader (pod-index 0) of each
/// group <c>&lt;model&gt;-g0 … g(n−1)</c>, named after the group, so that a scale-down names groups.
/// With data-parallel attention every rank of a group runs requests: each rank pod is read
/// (<see cref="ReplicaTarget.Replica"/> names its group) and <see cref="PerReplica"/> sums them.
/// </summary>
public static class ReplicaTargets
{
    public static IReadOnlyList<ReplicaTarget> Of(string model, ModelShape shape, IReadOnlyList<V1Pod> pods) =>
        ServingPods(model, shape, pods).Select(s => s.Pod is null
            ? new ReplicaTarget(new ReplicaEndpoint(s.Name, null), false, s.Replica)
            : Target(s.Name, s.Pod) with { Replica = s.Replica }).ToList();

    /// <summary>
    /// The pods that take the model's requests, one per replica (a rank per data-parallel group), in order:
    /// the autoscaler reads their load, the gateway routes to the ready ones. A slot whose pod is missing
    /// has <see cref="ServingPod.Pod"/> null.
    /// </summary>
    public static IReadOnlyList<ServingPod> ServingPods(string model, ModelShape shape, IReadOnlyList<V1Pod> pods)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(pods);
        // A pod being deleted is draining: it is no longer one of the replicas the count asks for.
        var live = pods.Where(p => p.Metadata.DeletionTimestamp is null).ToList();
        if (!shape.IsMultiPod)
            return live.OrderBy(p => p.Metadata.Name, StringComparer.Ordinal).Select(p => new ServingPod(p.Metadata.Name, p)).ToList();

        var serving = new List<ServingPod>(shape.Replicas);
        for (var k = 0; k < shape.Replicas; k++)
        {
            var group = ObjectNames.Group(model, k);
            var label = ObjectNames.GroupLabel(k);
            if (shape.DataParallelAttention)
            {
                for (var rank = 0; rank < shape.PodsPerReplica; rank++)
                {
                    var index = rank.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    var pod = live.FirstOrDefault(p => Label(p, ModelLabels.Group) == label && Label(p, ModelLabels.PodIndex) == index)
                        ?? live.FirstOrDefault(p => p.Metadata.Name == $"{group}-{index}");
                    serving.Add(new ServingPod(pod?.Metadata.Name ?? $"{group}-{index}", pod, group));
                }
                continue;
            }
            var leader = live.FirstOrDefault(p => Label(p, ModelLabels.Group) == label && Label(p, ModelLabels.PodIndex) == "0")
                ?? live.FirstOrDefault(p => p.Metadata.Name == group + "-0");
            serving.Add(new ServingPod(group, leader));
        }
        return serving;
    }

    /// <summary>
    /// A replica whose pod the kubelet does not report Ready counts as NotReady even when the runtime
    /// already answers ready: no Service routes to it yet (or any more).
    /// </summary>
    public static IReadOnlyList<ReplicaLoad> WithPodReadiness(IReadOnlyList<ReplicaLoad> loads, IReadOnlyList<ReplicaTarget> targets)
    {
        ArgumentNullException.ThrowIfNull(loads);
        ArgumentNullException.ThrowIfNull(targets);
        if (loads.Count != targets.Count)
            throw new ArgumentException($"Got {loads.Count} loads for {targets.Count} replicas; the load source answers one per replica.", nameof(loads));
        return loads.Select((load, i) => load.State == ReplicaLoadState.Ready && !targets[i].PodReady
            ? ReplicaLoad.NotReady(load.Name, load.Load!)
            : load).ToList();
    }

    /// <summary>
    /// One load per replica, in order: a target's own, or the sum over the ranks of a group read rank by rank
    /// (data-parallel attention). A group is Unreachable if any rank is (its load is unknown), NotReady if any
    /// rank is, else Ready; queues, running requests, throughput and capacities add up, KV usage is the mean
    /// (each rank has a cache of its own, of the same size).
    /// </summary>
    public static IReadOnlyList<ReplicaLoad> PerReplica(IReadOnlyList<ReplicaLoad> loads, IReadOnlyList<ReplicaTarget> targets)
    {
        ArgumentNullException.ThrowIfNull(loads);
        ArgumentNullException.ThrowIfNull(targets);
        if (loads.Count != targets.Count)
            throw new ArgumentException($"Got {loads.Count} loads for {targets.Count} targets; the load source answers one per target.", nameof(loads));
        var replicas = new List<ReplicaLoad>();
        var i = 0;
        while (i < loads.Count)
        {
            if (targets[i].Replica is not { } group)
            {
                replicas.Add(loads[i++]);
                continue;
            }
            var ranks = new List<ReplicaLoad>();
            while (i < loads.Count && targets[i].Replica == group) ranks.Add(loads[i++]);
            replicas.Add(Sum(group, ranks));
        }
        return replicas;
    }

    private static ReplicaLoad Sum(string group, IReadOnlyList<ReplicaLoad> ranks)
    {
        if (ranks.FirstOrDefault(r => r.State == ReplicaLoadState.Unreachable) is { } lost)
            return ReplicaLoad.Unreachable(group, $"rank pod {lost.Name}: {lost.Detail}");
        var loads = ranks.Select(r => r.Load!).ToList();
        var sum = new LoadSnapshot(
            loads.Sum(l => l.Waiting), loads.Sum(l => l.Running), loads.Average(l => l.KvCacheUsage), loads.Sum(l => l.RecentTokensPerSecond),
            loads.Sum(l => l.MaxRunningRequests), loads.Sum(l => l.MaxQueuedRequests));
        return ranks.All(r => r.State == ReplicaLoadState.Ready) ? ReplicaLoad.Ready(group, sum) : ReplicaLoad.NotReady(group, sum);
    }

    /// <summary>The port named <c>grpc</c> of the pod's containers (the runtime's default when none is named).</summary>
    public static int GrpcPort(V1Pod pod) =>
        pod.Spec?.Containers?.SelectMany(c => c.Ports ?? []).FirstOrDefault(p => p.Name == RuntimeContract.GrpcName)?.ContainerPort
        ?? RuntimeContract.Grpc;

    /// <summary>The port named <c>http</c> of the pod's containers (the runtime's default when none is named): its OpenAI API.</summary>
    public static int HttpPort(V1Pod pod) =>
        pod.Spec?.Containers?.SelectMany(c => c.Ports ?? []).FirstOrDefault(p => p.Name == RuntimeContract.HttpName)?.ContainerPort
        ?? RuntimeContract.Http;

    public static bool IsReady(V1Pod pod) =>
        pod.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true;

    private static ReplicaTarget Target(string name, V1Pod pod) =>
        new(ReplicaEndpoint.ForPod(name, pod.Status?.PodIP, GrpcPort(pod)), IsReady(pod));

    private static string? Label(V1Pod pod, string key) =>
        pod.Metadata.Labels is { } labels && labels.TryGetValue(key, out var value) ? value : null;
}

/// <summary>One pod that takes a model's requests: its replica's name (the pod's, or its group's), the pod if it exists, and for a rank of a data-parallel group, the group.</summary>
public sealed record ServingPod(string Name, V1Pod? Pod, string? Replica = null);
