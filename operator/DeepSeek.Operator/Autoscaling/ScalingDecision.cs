namespace DeepSeek.Operator.Autoscaling;

/// <summary>
/// The outcome of one poll. The reconciler sets the replica count (or group count) to
/// <see cref="DesiredReplicas"/>, removing the replicas in <see cref="ReplicasToRemove"/> when it
/// can choose (groups; pod-deletion-cost for Deployments), writes <c>desiredReplicas</c> and
/// <c>queueDepth</c> (<see cref="Load"/>.Waiting) to status, and sets <c>ScalingLimited</c> from
/// <see cref="Limit"/>.
/// </summary>
public sealed record ScalingDecision(
    int CurrentReplicas,
    int DesiredReplicas,
    ScalingDirection Direction,
    ScalingLimit Limit,
    string Reason,
    LoadSummary Load,
    int? Recommendation,
    IReadOnlyList<string> ReplicasToRemove)
{
    /// <summary>
    /// Set when busy replicas held a scale-down back (<see cref="ScalingLimit.ReplicasBusy"/>): the
    /// replicas the scale-down would take next, fewest running requests first. A reconciler that
    /// can stop routing new requests to them lets them go idle, and a later poll removes them.
    /// </summary>
    public IReadOnlyList<string> ReplicasToDrain { get; init; } = [];

    /// <summary>True when min/max, a rate limit or busy replicas held the count back.</summary>
    public bool IsLimited => Limit != ScalingLimit.None;

    /// <summary>The <c>ScalingLimited</c> condition's reason (the HPA's words).</summary>
    public string LimitReason => Limit == ScalingLimit.None ? "DesiredWithinRange" : Limit.ToString();
}

public enum ScalingDirection
{
    None,
    Up,
    Down,
}

/// <summary>
/// What kept the desired count from the metric's recommendation. Names other than
/// <see cref="None"/> are the reasons of the <c>ScalingLimited</c> condition (as the HPA's).
/// </summary>
public enum ScalingLimit
{
    None,

    /// <summary>Held at <c>minReplicas</c>.</summary>
    TooFewReplicas,

    /// <summary>Held at <c>maxReplicas</c>.</summary>
    TooManyReplicas,

    /// <summary>Held by the scale-up rate limit.</summary>
    ScaleUpLimit,

    /// <summary>Held by the scale-down rate limit.</summary>
    ScaleDownLimit,

    /// <summary>Held because the replicas that would go still have running requests.</summary>
    ReplicasBusy,
}

/// <summary>
/// The poll's totals, for status (<c>queueDepth</c> = <see cref="Waiting"/>) and for the decision's
/// message. <see cref="Unreachable"/> includes replicas the operator expected but got no
/// observation for.
/// </summary>
public sealed record LoadSummary(int Ready, int NotReady, int Unreachable, int Waiting, int Running)
{
    /// <summary>Waiting requests per ready replica: the metric compared with the target.</summary>
    public double? WaitingPerReadyReplica => Ready == 0 ? null : (double)Waiting / Ready;

    public static LoadSummary From(IReadOnlyList<ReplicaLoad> replicas, int currentReplicas)
    {
        ArgumentNullException.ThrowIfNull(replicas);
        var ready = replicas.Where(r => r.State == ReplicaLoadState.Ready).ToList();
        var notReady = replicas.Count(r => r.State == ReplicaLoadState.NotReady);
        var unreachable = replicas.Count(r => r.State == ReplicaLoadState.Unreachable)
            + Math.Max(0, currentReplicas - replicas.Count);
        return new LoadSummary(
            ready.Count,
            notReady,
            unreachable,
            ready.Sum(r => r.Load!.Waiting),
            replicas.Sum(r => r.Load?.Running ?? 0));
    }
}

/// <summary>
/// What the autoscaler has for one reconcile: a decision when a poll was due (null otherwise), and
/// when to look again.
/// </summary>
public sealed record ScalingPoll(ScalingDecision? Decision, TimeSpan NextPollIn);
