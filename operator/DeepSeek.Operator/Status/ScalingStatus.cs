using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Autoscaling;
using k8s.Models;

namespace DeepSeek.Operator.Status;

/// <summary>
/// The autoscaler's part of a model's status (pure): <c>desiredReplicas</c>, <c>queueDepth</c> and
/// the <c>ScalingLimited</c> condition. The result is the status the reconciler builds from:
/// <see cref="Desired.ModelShape"/> reads <c>desiredReplicas</c>, and
/// <see cref="StatusCalculator"/> keeps <c>queueDepth</c> and <c>ScalingLimited</c> as they are.
/// </summary>
public static class ScalingStatus
{
    /// <summary>The previous status with one poll's decision recorded.</summary>
    public static DeepSeekModelStatus WithDecision(DeepSeekModelStatus? previous, ScalingDecision decision, long? generation, DateTime now)
    {
        ArgumentNullException.ThrowIfNull(decision);
        var status = Copy(previous);
        status.DesiredReplicas = decision.DesiredReplicas;
        // Waiting per ready replica: the number compared with targetQueueDepth (unknown when no replica answered).
        status.QueueDepth = decision.Load.WaitingPerReadyReplica is { } depth ? Math.Round(depth, 3) : null;
        var conditions = status.Conditions!.Where(c => c.Type != ModelConditions.ScalingLimited).ToList();
        var before = previous?.Conditions?.FirstOrDefault(c => c.Type == ModelConditions.ScalingLimited);
        var value = decision.IsLimited ? ModelConditions.True : ModelConditions.False;
        conditions.Add(new V1Condition
        {
            Type = ModelConditions.ScalingLimited,
            Status = value,
            Reason = decision.LimitReason,
            Message = decision.Reason,
            ObservedGeneration = generation,
            // Moves only when the status flips, as Kubernetes conditions require.
            LastTransitionTime = before is not null && before.Status == value ? before.LastTransitionTime : now,
        });
        status.Conditions = conditions;
        return status;
    }

    /// <summary>The previous status without the autoscaler's fields: autoscaling is off, spec.replicas rules.</summary>
    public static DeepSeekModelStatus WithoutAutoscaling(DeepSeekModelStatus? previous)
    {
        var status = Copy(previous);
        status.QueueDepth = null;
        status.Conditions = status.Conditions!.Where(c => c.Type != ModelConditions.ScalingLimited).ToList();
        return status;
    }

    private static DeepSeekModelStatus Copy(DeepSeekModelStatus? previous) => new()
    {
        ObservedGeneration = previous?.ObservedGeneration,
        Replicas = previous?.Replicas,
        ReadyReplicas = previous?.ReadyReplicas,
        DesiredReplicas = previous?.DesiredReplicas,
        QueueDepth = previous?.QueueDepth,
        Selector = previous?.Selector,
        Endpoint = previous?.Endpoint,
        Adapters = previous?.Adapters,
        Conditions = [.. previous?.Conditions ?? []],
    };
}
