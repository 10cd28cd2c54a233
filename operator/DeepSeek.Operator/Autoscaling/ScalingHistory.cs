namespace DeepSeek.Operator.Autoscaling;

/// <summary>One model's recent recommendations and applied changes, oldest first.</summary>
public sealed record ScalingHistory(
    IReadOnlyList<ScalingRecommendation> Recommendations,
    IReadOnlyList<ScaleEvent> ScaleEvents)
{
    public static ScalingHistory Empty { get; } = new([], []);
}
