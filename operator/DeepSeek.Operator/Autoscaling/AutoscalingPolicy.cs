using DeepSeek.Operator.Api.V1Alpha1;

namespace DeepSeek.Operator.Autoscaling;

/// <summary>
/// The autoscaling settings of one model: the CRD's <c>spec.autoscaling</c> (first seven
/// properties) plus the tolerance and rate limits, which the CRD leaves at these defaults.
/// Replicas are whole replicas: for a model with <c>podsPerReplica &gt; 1</c> one replica is one
/// replica group (a StatefulSet of that many pods), and every count here counts groups.
/// </summary>
public sealed record AutoscalingPolicy
{
    public bool Enabled { get; init; } = true;
    public int MinReplicas { get; init; } = 1;
    public required int MaxReplicas { get; init; }

    /// <summary>Waiting (admitted, not yet running) requests per ready replica to aim for.</summary>
    public required double TargetQueueDepth { get; init; }

    public int ScaleUpStabilizationSeconds { get; init; }
    public int ScaleDownStabilizationSeconds { get; init; } = 300;
    public int PollIntervalSeconds { get; init; } = 15;

    /// <summary>No change while |metric / target − 1| is at most this (the HPA's default 0.1).</summary>
    public double Tolerance { get; init; } = 0.1;

    /// <summary>The HPA's default scale-up rate: max(4 replicas, 100 %) per 15 s.</summary>
    public ScalingRateLimit ScaleUpRate { get; init; } = new(Replicas: 4, Percent: 100, PeriodSeconds: 15);

    /// <summary>
    /// One replica per 15 s, slower than the HPA's default (100 % per 15 s): a replica of a large
    /// model takes minutes to load, so giving one back too early is expensive.
    /// </summary>
    public ScalingRateLimit ScaleDownRate { get; init; } = new(Replicas: 1, Percent: 0, PeriodSeconds: 15);

    public TimeSpan ScaleUpStabilization => TimeSpan.FromSeconds(ScaleUpStabilizationSeconds);
    public TimeSpan ScaleDownStabilization => TimeSpan.FromSeconds(ScaleDownStabilizationSeconds);
    public TimeSpan PollInterval => TimeSpan.FromSeconds(PollIntervalSeconds);

    /// <summary>How long history must be kept to answer every window and rate-limit period.</summary>
    public TimeSpan HistoryRetention => new[]
    {
        ScaleUpStabilization, ScaleDownStabilization, ScaleUpRate.Period, ScaleDownRate.Period,
    }.Max();

    /// <summary>The policy of a model's <c>spec.autoscaling</c>; tolerance and rate limits at their defaults.</summary>
    public static AutoscalingPolicy From(AutoscalingSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new AutoscalingPolicy
        {
            Enabled = spec.Enabled,
            MinReplicas = spec.MinReplicas,
            MaxReplicas = spec.MaxReplicas,
            TargetQueueDepth = spec.TargetQueueDepth,
            ScaleUpStabilizationSeconds = spec.ScaleUpStabilizationSeconds,
            ScaleDownStabilizationSeconds = spec.ScaleDownStabilizationSeconds,
            PollIntervalSeconds = spec.PollIntervalSeconds,
        };
    }

    /// <summary>Every problem with the values, as messages that name the field; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (MinReplicas < 1)
            errors.Add($"autoscaling.minReplicas must be at least 1 (got {MinReplicas}): with no replica there is no queue to observe.");
        if (MaxReplicas < MinReplicas)
            errors.Add($"autoscaling.maxReplicas ({MaxReplicas}) must be at least minReplicas ({MinReplicas}).");
        if (!(TargetQueueDepth > 0) || double.IsInfinity(TargetQueueDepth))
            errors.Add($"autoscaling.targetQueueDepth must be a number above 0 (got {TargetQueueDepth}).");
        if (ScaleUpStabilizationSeconds < 0)
            errors.Add($"autoscaling.scaleUpStabilizationSeconds must be 0 or more (got {ScaleUpStabilizationSeconds}).");
        if (ScaleDownStabilizationSeconds < 0)
            errors.Add($"autoscaling.scaleDownStabilizationSeconds must be 0 or more (got {ScaleDownStabilizationSeconds}).");
        if (PollIntervalSeconds < 1)
            errors.Add($"autoscaling.pollIntervalSeconds must be at least 1 (got {PollIntervalSeconds}).");
        if (!(Tolerance >= 0 && Tolerance < 1))
            errors.Add($"autoscaling tolerance must be in [0, 1) (got {Tolerance}).");
        errors.AddRange(ScaleUpRate.Validate("autoscaling scale-up rate", scaleDown: false));
        errors.AddRange(ScaleDownRate.Validate("autoscaling scale-down rate", scaleDown: true));
        return errors;
    }
}

/// <summary>
/// How far one direction may move within any <see cref="PeriodSeconds"/>: by
/// <see cref="Replicas"/> replicas or by <see cref="Percent"/> of the count at the start of the
/// period, whichever allows the larger change (the HPA's default <c>selectPolicy: Max</c>).
/// Zero turns one of the two rules off.
/// </summary>
public sealed record ScalingRateLimit(int Replicas, int Percent, int PeriodSeconds)
{
    public TimeSpan Period => TimeSpan.FromSeconds(PeriodSeconds);

    /// <summary>The most replicas allowed after scaling up from <paramref name="periodStartReplicas"/>.</summary>
    public int UpperBound(int periodStartReplicas) =>
        Math.Max(
            periodStartReplicas + Replicas,
            (int)Math.Ceiling(periodStartReplicas * (1 + Percent / 100.0)));

    /// <summary>The fewest replicas allowed after scaling down from <paramref name="periodStartReplicas"/>.</summary>
    public int LowerBound(int periodStartReplicas) =>
        Math.Min(
            periodStartReplicas - Replicas,
            (int)Math.Floor(periodStartReplicas * (1 - Percent / 100.0)));

    public override string ToString() => (Replicas, Percent) switch
    {
        (> 0, > 0) => $"max({Replicas} replicas, {Percent}%) per {PeriodSeconds} s",
        (> 0, _) => $"{Replicas} replica{(Replicas == 1 ? "" : "s")} per {PeriodSeconds} s",
        _ => $"{Percent}% per {PeriodSeconds} s",
    };

    internal IEnumerable<string> Validate(string field, bool scaleDown)
    {
        if (Replicas < 0) yield return $"{field}.replicas must be 0 or more (got {Replicas}).";
        if (Percent < 0) yield return $"{field}.percent must be 0 or more (got {Percent}).";
        if (scaleDown && Percent > 100) yield return $"{field}.percent must be at most 100 (got {Percent}).";
        if (Replicas <= 0 && Percent <= 0) yield return $"{field} allows no change at all: set replicas or percent above 0.";
        if (PeriodSeconds <= 0) yield return $"{field}.periodSeconds must be above 0 (got {PeriodSeconds}).";
    }
}
