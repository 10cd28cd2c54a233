namespace DeepSeek.Operator.Autoscaling;

/// <summary>
/// The autoscaler's memory, held by the reconciler: per model key (<c>namespace/name</c>), the
/// recommendations and applied changes of the last <see cref="AutoscalingPolicy.HistoryRetention"/>
/// (the longest stabilization window or rate-limit period), and when the model was last polled.
/// Safe to use from concurrent reconciles.
/// </summary>
public sealed class ScalingHistoryStore(TimeProvider timeProvider)
{
    private readonly Lock gate = new();
    private readonly Dictionary<string, ModelHistory> models = new(StringComparer.Ordinal);

    /// <summary>
    /// Decides for one poll at the current time and remembers the recommendation. Call
    /// <see cref="RecordScale"/> once the change is applied.
    /// </summary>
    public ScalingDecision Evaluate(string modelKey, AutoscalingPolicy policy, int currentReplicas, IReadOnlyList<ReplicaLoad> replicas)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelKey);
        ArgumentNullException.ThrowIfNull(policy);
        var now = timeProvider.GetUtcNow();
        lock (gate)
        {
            var model = GetOrAdd(modelKey);
            model.Retention = policy.HistoryRetention;
            model.Prune(now);
            var decision = QueueDepthAutoscaler.Decide(policy, currentReplicas, replicas, model.Snapshot(), now);
            if (decision.Recommendation is { } recommended) model.Recommendations.Add(new ScalingRecommendation(now, recommended));
            model.LastEvaluatedAt = now;
            return decision;
        }
    }

    /// <summary>Records a change of the replica count that was applied; the rate limits count these.</summary>
    public void RecordScale(string modelKey, int fromReplicas, int toReplicas)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelKey);
        if (fromReplicas == toReplicas) return;
        var now = timeProvider.GetUtcNow();
        lock (gate)
        {
            var model = GetOrAdd(modelKey);
            model.ScaleEvents.Add(new ScaleEvent(now, fromReplicas, toReplicas));
            model.Prune(now);
        }
    }

    /// <summary>How long until the model's next poll is due; zero when due now or never polled.</summary>
    public TimeSpan UntilNextPoll(string modelKey, AutoscalingPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        lock (gate)
        {
            if (!models.TryGetValue(modelKey, out var model) || model.LastEvaluatedAt is not { } last) return TimeSpan.Zero;
            var due = last + policy.PollInterval - timeProvider.GetUtcNow();
            return due > TimeSpan.Zero ? due : TimeSpan.Zero;
        }
    }

    public ScalingHistory Get(string modelKey)
    {
        lock (gate)
        {
            if (!models.TryGetValue(modelKey, out var model)) return ScalingHistory.Empty;
            model.Prune(timeProvider.GetUtcNow());
            return model.Snapshot();
        }
    }

    /// <summary>Drops a model's history: it was deleted, or its autoscaling was turned off.</summary>
    public void Forget(string modelKey)
    {
        lock (gate) models.Remove(modelKey);
    }

    private ModelHistory GetOrAdd(string modelKey)
    {
        if (!models.TryGetValue(modelKey, out var model))
        {
            model = new ModelHistory();
            models.Add(modelKey, model);
        }
        return model;
    }

    private sealed class ModelHistory
    {
        public List<ScalingRecommendation> Recommendations { get; } = [];
        public List<ScaleEvent> ScaleEvents { get; } = [];
        public TimeSpan Retention { get; set; } = TimeSpan.FromSeconds(300);
        public DateTimeOffset? LastEvaluatedAt { get; set; }

        // Entries at or before now − retention fall outside every window, which are open at the start.
        public void Prune(DateTimeOffset now)
        {
            var cutoff = now - Retention;
            Recommendations.RemoveAll(r => r.At <= cutoff);
            ScaleEvents.RemoveAll(e => e.At <= cutoff);
        }

        public ScalingHistory Snapshot() => new([.. Recommendations], [.. ScaleEvents]);
    }
}

/// <summary>One model's recent recommendations and applied changes, oldest first.</summary>
public sealed record ScalingHistory(
    IReadOnlyList<ScalingRecommendation> Recommendations,
    IReadOnlyList<ScaleEvent> ScaleEvents)
{
    public static ScalingHistory Empty { get; } = new([], []);
}

/// <summary>A change of the replica count that was applied: what the rate limits count.</summary>
public sealed record ScaleEvent(DateTimeOffset At, int FromReplicas, int ToReplicas)
{
    public int Added => Math.Max(0, ToReplicas - FromReplicas);
    public int Removed => Math.Max(0, FromReplicas - ToReplicas);
}

/// <summary>What the metric alone asked for at one poll, before stabilization and limits.</summary>
public sealed record ScalingRecommendation(DateTimeOffset At, int Replicas);
