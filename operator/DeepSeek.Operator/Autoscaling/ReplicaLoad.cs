namespace DeepSeek.Operator.Autoscaling;

/// <summary>
/// What one replica (for multi-pod models: one replica group, read at its leader) reported at
/// one poll. <see cref="Load"/> is set unless <see cref="State"/> is
/// <see cref="ReplicaLoadState.Unreachable"/>, in which case <see cref="Detail"/> says why.
/// </summary>
public sealed record ReplicaLoad
{
    private ReplicaLoad(string name, ReplicaLoadState state, LoadSnapshot? load, string? detail)
    {
        Name = name;
        State = state;
        Load = load;
        Detail = detail;
    }

    /// <summary>The replica's name: the pod name, or the group's StatefulSet name (<c>&lt;model&gt;-g&lt;k&gt;</c>).</summary>
    public string Name { get; }
    public ReplicaLoadState State { get; }
    public LoadSnapshot? Load { get; }
    public string? Detail { get; }

    /// <summary>Known to hold no running request: removing it cuts nothing off.</summary>
    public bool IsIdle => Load is { Running: 0 };

    public static ReplicaLoad Ready(string name, LoadSnapshot load) =>
        new(name, ReplicaLoadState.Ready, load ?? throw new ArgumentNullException(nameof(load)), null);

    public static ReplicaLoad NotReady(string name, LoadSnapshot load) =>
        new(name, ReplicaLoadState.NotReady, load ?? throw new ArgumentNullException(nameof(load)), null);

    public static ReplicaLoad Unreachable(string name, string reason) =>
        new(name, ReplicaLoadState.Unreachable, null, reason);
}

public enum ReplicaLoadState
{
    /// <summary>Answered and ready: its queue counts toward the metric.</summary>
    Ready,

    /// <summary>Answered with <c>ready = false</c> (loading or draining): not idle capacity.</summary>
    NotReady,

    /// <summary>No answer (no address yet, refused, timed out): its load is unknown, not zero.</summary>
    Unreachable,
}

/// <summary>One replica leader's answer to <c>GetLoad</c>, in the operator's own terms.</summary>
public sealed record LoadSnapshot(
    int Waiting,
    int Running,
    double KvCacheUsage = 0,
    double RecentTokensPerSecond = 0,
    int MaxRunningRequests = 0,
    int MaxQueuedRequests = 0);

/// <summary>
/// Where to read one replica's load: its leader pod's gRPC address (<c>http://IP:port</c>, h2c),
/// or none while the pod has no IP yet.
/// </summary>
public sealed record ReplicaEndpoint(string Name, Uri? Address)
{
    /// <summary>The address of a pod's <c>grpc</c> port; IPv6 addresses get their brackets.</summary>
    public static ReplicaEndpoint ForPod(string name, string? podIp, int grpcPort)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfLessThan(grpcPort, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(grpcPort, 65535);
        if (string.IsNullOrEmpty(podIp)) return new ReplicaEndpoint(name, null);
        if (!System.Net.IPAddress.TryParse(podIp, out var ip))
            throw new ArgumentException($"Pod {name} has IP '{podIp}', which is not an IP address.", nameof(podIp));
        return new ReplicaEndpoint(name, new UriBuilder(Uri.UriSchemeHttp, ip.ToString(), grpcPort).Uri);
    }
}

/// <summary>
/// One pod to read: where it answers <c>GetLoad</c>, whether the kubelet reports it Ready, and, for a rank
/// of a data-parallel group, the replica group whose load it is part of (null: it is the replica's whole load).
/// </summary>
public sealed record ReplicaTarget(ReplicaEndpoint Endpoint, bool PodReady, string? Replica = null);
