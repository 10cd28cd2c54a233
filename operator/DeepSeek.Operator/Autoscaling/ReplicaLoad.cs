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
