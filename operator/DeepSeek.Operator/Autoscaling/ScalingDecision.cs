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
