namespace DeepSeek.Operator.Autoscaling;

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
