using System.Globalization;

namespace DeepSeek.Operator.Autoscaling;

/// <summary>
/// Desired replicas from queue depth, after the Kubernetes HPA's algorithm (see
/// <c>docs/autoscaling.md</c>): the metric's recommendation, stabilized over the scale-up and
/// scale-down windows, limited by the rate limits and <c>minReplicas..maxReplicas</c>, and never
/// below the replicas that still run requests. Pure: everything it needs is passed in.
/// </summary>
public static class QueueDepthAutoscaler
{
    /// <param name="policy">The model's autoscaling settings.</param>
    /// <param name="currentReplicas">Replicas (groups) the workload asks for now.</param>
    /// <param name="replicas">One observation per existing replica, in ordinal order; replicas of
    /// <paramref name="currentReplicas"/> with no observation count as unreachable.</param>
    /// <param name="history">Earlier recommendations and applied changes of this model.</param>
    /// <param name="now">The time of this poll.</param>
    public static ScalingDecision Decide(
        AutoscalingPolicy policy,
        int currentReplicas,
        IReadOnlyList<ReplicaLoad> replicas,
        ScalingHistory history,
        DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(replicas);
        ArgumentNullException.ThrowIfNull(history);
        var errors = policy.Validate();
        if (errors.Count > 0) throw new ArgumentException(string.Join(" ", errors), nameof(policy));
        ArgumentOutOfRangeException.ThrowIfNegative(currentReplicas);

        var load = LoadSummary.From(replicas, currentReplicas);
        if (!policy.Enabled)
        {
            return Hold(currentReplicas, load,
                "autoscaling is disabled: spec.replicas (or an HPA or KEDA through the scale subresource) sets the count");
        }

        // As the HPA: a count outside the bounds is corrected first, whatever the metric says.
        if (currentReplicas > policy.MaxReplicas)
        {
            return Finish(currentReplicas, policy.MaxReplicas, ScalingLimit.TooManyReplicas, load, null, replicas,
                $"{currentReplicas} replicas are above maxReplicas {policy.MaxReplicas}");
        }
        if (currentReplicas < policy.MinReplicas)
        {
            return Finish(currentReplicas, policy.MinReplicas, ScalingLimit.TooFewReplicas, load, null, replicas,
                $"{currentReplicas} replicas are below minReplicas {policy.MinReplicas}");
        }

        var (recommendation, metricText) = Recommend(policy, currentReplicas, load);
        if (recommendation is not { } recommended)
        {
            return Hold(currentReplicas, load, $"holding {currentReplicas}: {metricText}{FirstUnreachableReason(replicas)}");
        }

        var reason = $"{metricText}: recommends {recommended}";
        var stabilized = Stabilize(policy, currentReplicas, recommended, history, now);
        if (stabilized != recommended)
        {
            reason += stabilized < recommended
                ? $"; held at {stabilized} by the {policy.ScaleUpStabilizationSeconds} s scale-up stabilization window"
                : $"; held at {stabilized} by the {policy.ScaleDownStabilizationSeconds} s scale-down stabilization window";
        }

        var (bounded, limit, limitText) = ApplyLimits(policy, currentReplicas, stabilized, history, now);
        if (limit != ScalingLimit.None) reason += $"; {limitText}";
        return Finish(currentReplicas, bounded, limit, load, recommended, replicas, reason);
    }

    /// <summary>
    /// The metric's recommendation, as the HPA's for a per-pod average target: ready replicas
    /// carry their queue; not-ready replicas count as empty, and only when scaling up; unreachable
    /// ones as empty when scaling up and as exactly at target when scaling down, so missing data
    /// never causes a scale-down and dampens a scale-up.
    /// </summary>
    private static (int? Replicas, string Text) Recommend(AutoscalingPolicy policy, int current, LoadSummary load)
    {
        if (load.Ready == 0)
        {
            return (null,
                $"no replica reported its queue ({load.NotReady} not ready, {load.Unreachable} unreachable), so there is no metric to act on");
        }

        var target = policy.TargetQueueDepth;
        double waiting = load.Waiting;
        var ratio = waiting / (load.Ready * target);
        var text = string.Create(CultureInfo.InvariantCulture,
            $"{load.Waiting} waiting on {load.Ready} ready replica{(load.Ready == 1 ? "" : "s")} ({waiting / load.Ready:0.##} per replica, target {target:0.##})");

        var scaleUpWithNotReady = load.NotReady > 0 && ratio > 1;
        if (!scaleUpWithNotReady && load.Unreachable == 0)
        {
            if (Math.Abs(ratio - 1) <= policy.Tolerance) return (current, text + ", within tolerance");
            return (CeilingOf(waiting / target), text);
        }

        var counted = load.Ready;
        if (load.Unreachable > 0)
        {
            counted += load.Unreachable;
            if (ratio < 1) waiting += load.Unreachable * target;
            text += ratio < 1
                ? $", {load.Unreachable} unreachable counted at target"
                : $", {load.Unreachable} unreachable counted as empty";
        }
        if (scaleUpWithNotReady)
        {
            counted += load.NotReady;
            text += $", {load.NotReady} not ready counted as empty";
        }

        var adjusted = waiting / (counted * target);
        if (Math.Abs(adjusted - 1) <= policy.Tolerance || (ratio < 1 && adjusted > 1) || (ratio > 1 && adjusted < 1))
        {
            return (current, text + ", within tolerance once they are counted");
        }
        var replicas = CeilingOf(waiting / target);
        if ((adjusted < 1 && replicas > current) || (adjusted > 1 && replicas < current))
        {
            return (current, text + ", no change once they are counted");
        }
        return (replicas, text);
    }

    /// <summary>
    /// The HPA's stabilization: scale up only to the lowest recommendation of the scale-up window,
    /// scale down only to the highest of the scale-down window.
    /// </summary>
    private static int Stabilize(AutoscalingPolicy policy, int current, int recommended, ScalingHistory history, DateTimeOffset now)
    {
        var upCutoff = now - policy.ScaleUpStabilization;
        var downCutoff = now - policy.ScaleDownStabilization;
        var upRecommendation = recommended;
        var downRecommendation = recommended;
        foreach (var earlier in history.Recommendations)
        {
            if (earlier.At > upCutoff) upRecommendation = Math.Min(upRecommendation, earlier.Replicas);
            if (earlier.At > downCutoff) downRecommendation = Math.Max(downRecommendation, earlier.Replicas);
        }
        return Math.Clamp(current, upRecommendation, downRecommendation);
    }

    /// <summary>The rate limits (counting changes applied within the period) and min/max.</summary>
    private static (int Replicas, ScalingLimit Limit, string Text) ApplyLimits(
        AutoscalingPolicy policy, int current, int desired, ScalingHistory history, DateTimeOffset now)
    {
        if (desired > current)
        {
            var since = now - policy.ScaleUpRate.Period;
            var added = history.ScaleEvents.Where(e => e.At > since).Sum(e => e.Added);
            var rateBound = Math.Max(current, policy.ScaleUpRate.UpperBound(current - added));
            var allowed = Math.Min(policy.MaxReplicas, rateBound);
            if (desired <= allowed) return (desired, ScalingLimit.None, "");
            return allowed == policy.MaxReplicas
                ? (allowed, ScalingLimit.TooManyReplicas, $"limited to maxReplicas {policy.MaxReplicas}")
                : (allowed, ScalingLimit.ScaleUpLimit, $"limited to {allowed} by the scale-up rate ({policy.ScaleUpRate})");
        }
        if (desired < current)
        {
            var since = now - policy.ScaleDownRate.Period;
            var removed = history.ScaleEvents.Where(e => e.At > since).Sum(e => e.Removed);
            var rateBound = Math.Min(current, policy.ScaleDownRate.LowerBound(current + removed));
            var allowed = Math.Max(policy.MinReplicas, rateBound);
            if (desired >= allowed) return (desired, ScalingLimit.None, "");
            return allowed == policy.MinReplicas
                ? (allowed, ScalingLimit.TooFewReplicas, $"limited to minReplicas {policy.MinReplicas}")
                : (allowed, ScalingLimit.ScaleDownLimit, $"limited to {allowed} by the scale-down rate ({policy.ScaleDownRate})");
        }
        return (desired, ScalingLimit.None, "");
    }

    /// <summary>
    /// Applies the drain rule and builds the decision. A scale-down removes only replicas known to
    /// be idle (reachable, running = 0): desired ≥ current − idle. Not-ready idle replicas go
    /// first, then ready idle ones from the highest ordinal down. When busy replicas hold the
    /// count up, the ones with the fewest running requests are named to drain.
    /// </summary>
    private static ScalingDecision Finish(
        int current, int desired, ScalingLimit limit, LoadSummary load, int? recommendation,
        IReadOnlyList<ReplicaLoad> replicas, string reason)
    {
        IReadOnlyList<string> toRemove = [];
        IReadOnlyList<string> toDrain = [];
        if (desired < current)
        {
            var ordered = replicas.Select((r, index) => (Replica: r, Index: index)).ToList();
            var idle = ordered.Where(x => x.Replica.IsIdle)
                .OrderBy(x => x.Replica.State == ReplicaLoadState.NotReady ? 0 : 1)
                .ThenByDescending(x => x.Index)
                .Select(x => x.Replica.Name)
                .Take(current)
                .ToList();
            var floor = current - idle.Count;
            if (desired < floor)
            {
                reason += $"; kept at {floor}: only {idle.Count} of {current} replicas are idle, the others run requests or did not answer";
                toDrain = ordered.Where(x => x.Replica.Load is { Running: > 0 })
                    .OrderBy(x => x.Replica.Load!.Running)
                    .ThenByDescending(x => x.Index)
                    .Select(x => x.Replica.Name)
                    .Take(floor - desired)
                    .ToList();
                desired = floor;
                limit = ScalingLimit.ReplicasBusy;
            }
            toRemove = idle.Take(current - desired).ToList();
        }

        var direction = desired > current ? ScalingDirection.Up
            : desired < current ? ScalingDirection.Down
            : ScalingDirection.None;
        var verb = direction switch
        {
            ScalingDirection.Up => $"scaling up from {current} to {desired}",
            ScalingDirection.Down => $"scaling down from {current} to {desired}",
            _ => $"keeping {current}",
        };
        return new ScalingDecision(current, desired, direction, limit, $"{verb}: {reason}", load, recommendation, toRemove)
        {
            ReplicasToDrain = toDrain,
        };
    }

    private static ScalingDecision Hold(int current, LoadSummary load, string reason) =>
        new(current, current, ScalingDirection.None, ScalingLimit.None, reason, load, null, []);

    private static string FirstUnreachableReason(IReadOnlyList<ReplicaLoad> replicas) =>
        replicas.FirstOrDefault(r => r.State == ReplicaLoadState.Unreachable) is { } first
            ? $" (first unreachable: {first.Name}: {first.Detail})"
            : "";

    // A hair below the next integer counts as that integer: 12 / 4 computed as 3.0000000001 is 3.
    private static int CeilingOf(double value) => (int)Math.Ceiling(value - 1e-9);
}
