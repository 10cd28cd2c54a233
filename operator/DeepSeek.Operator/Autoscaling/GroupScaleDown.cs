using DeepSeek.Operator.Desired;

namespace DeepSeek.Operator.Autoscaling;

/// <summary>
/// Replica groups are StatefulSets <c>&lt;model&gt;-g0 … g(n−1)</c> whose names stay stable, so a
/// scale-down removes groups from the highest ordinal down. Pure: a decision to remove groups keeps
/// only the contiguous top groups that the autoscaler chose as idle; a busy group below them holds
/// the rest back (reason <see cref="ScalingLimit.ReplicasBusy"/>) until a later poll finds it idle.
/// </summary>
public static class GroupScaleDown
{
    public static ScalingDecision FromTheTop(string model, ScalingDecision decision)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        ArgumentNullException.ThrowIfNull(decision);
        if (decision.Direction != ScalingDirection.Down) return decision;
        var removable = decision.ReplicasToRemove.ToHashSet(StringComparer.Ordinal);
        var current = decision.CurrentReplicas;
        var desired = current;
        while (desired > decision.DesiredReplicas && removable.Contains(ObjectNames.Group(model, desired - 1))) desired--;
        if (desired == decision.DesiredReplicas) return decision;

        var busy = ObjectNames.Group(model, desired - 1);
        return decision with
        {
            DesiredReplicas = desired,
            Direction = desired < current ? ScalingDirection.Down : ScalingDirection.None,
            Limit = ScalingLimit.ReplicasBusy,
            Reason = Reworded(decision, current, desired)
                + $"; kept {desired} groups: groups go from the highest ordinal down and {busy} is not known to be idle",
            ReplicasToRemove = [.. Enumerable.Range(desired, current - desired).Select(k => ObjectNames.Group(model, k))],
            ReplicasToDrain = [busy],
        };
    }

    // The autoscaler's reason starts with "scaling down from C to D"; say what is done instead.
    private static string Reworded(ScalingDecision decision, int current, int desired)
    {
        var said = $"scaling down from {current} to {decision.DesiredReplicas}";
        var now = desired < current ? $"scaling down from {current} to {desired}" : $"keeping {current}";
        return decision.Reason.StartsWith(said, StringComparison.Ordinal) ? now + decision.Reason[said.Length..] : decision.Reason;
    }
}
