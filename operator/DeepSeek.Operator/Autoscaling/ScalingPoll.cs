namespace DeepSeek.Operator.Autoscaling;

/// <summary>
/// What the autoscaler has for one reconcile: a decision when a poll was due (null otherwise), and
/// when to look again.
/// </summary>
public sealed record ScalingPoll(ScalingDecision? Decision, TimeSpan NextPollIn);
