namespace DeepSeek.Operator.Autoscaling;

/// <summary>What the metric alone asked for at one poll, before stabilization and limits.</summary>
public sealed record ScalingRecommendation(DateTimeOffset At, int Replicas);
