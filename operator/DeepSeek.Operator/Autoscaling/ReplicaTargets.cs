using DeepSeek.Contract;
using DeepSeek.Operator.Desired;
using k8s.Models;

namespace DeepSeek.Operator.Autoscaling;

/// <summary>
/// From a model's pods to the replicas the autoscaler reads (pure). One pod per replica: every pod
/// of the Deployment that is not being deleted. Replica groups: the leader (pod-index 0) of each
/// group <c>&lt;model&gt;-g0 … g(n−1)</c>, named after the group, so that a scale-down names groups.
/// </summary>
public static class ReplicaTargets
{
    public static IReadOnlyList<ReplicaTarget> Of(string model, ModelShape shape, IReadOnlyList<V1Pod> pods)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(pods);
        // A pod being deleted is draining: it is no longer one of the replicas the count asks for.
        var live = pods.Where(p => p.Metadata.DeletionTimestamp is null).ToList();
        if (!shape.IsMultiPod)
            return live.OrderBy(p => p.Metadata.Name, StringComparer.Ordinal).Select(p => Target(p.Metadata.Name, p)).ToList();

        var targets = new List<ReplicaTarget>(shape.Replicas);
        for (var k = 0; k < shape.Replicas; k++)
        {
            var group = ObjectNames.Group(model, k);
            var label = ObjectNames.GroupLabel(k);
            var leader = live.FirstOrDefault(p => Label(p, ModelLabels.Group) == label && Label(p, ModelLabels.PodIndex) == "0")
                ?? live.FirstOrDefault(p => p.Metadata.Name == group + "-0");
            targets.Add(leader is null ? new ReplicaTarget(new ReplicaEndpoint(group, null), false) : Target(group, leader));
        }
        return targets;
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

    /// <summary>The port named <c>grpc</c> of the pod's containers (the runtime's default when none is named).</summary>
    public static int GrpcPort(V1Pod pod) =>
        pod.Spec?.Containers?.SelectMany(c => c.Ports ?? []).FirstOrDefault(p => p.Name == RuntimeContract.GrpcName)?.ContainerPort
        ?? RuntimeContract.Grpc;

    public static bool IsReady(V1Pod pod) =>
        pod.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true;

    private static ReplicaTarget Target(string name, V1Pod pod) =>
        new(ReplicaEndpoint.ForPod(name, pod.Status?.PodIP, GrpcPort(pod)), IsReady(pod));

    private static string? Label(V1Pod pod, string key) =>
        pod.Metadata.Labels is { } labels && labels.TryGetValue(key, out var value) ? value : null;
}
