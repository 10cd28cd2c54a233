namespace DeepSeek.Operator.Autoscaling;

/// <summary>A change of the replica count that was applied: what the rate limits count.</summary>
public sealed record ScaleEvent(DateTimeOffset At, int FromReplicas, int ToReplicas)
{
    public int Added => Math.Max(0, ToReplicas - FromReplicas);
    public int Removed => Math.Max(0, FromReplicas - ToReplicas);
}
