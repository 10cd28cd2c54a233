namespace DeepSeek.Operator.Autoscaling;

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
