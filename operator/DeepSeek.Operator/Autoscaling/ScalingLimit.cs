namespace DeepSeek.Operator.Autoscaling;

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
