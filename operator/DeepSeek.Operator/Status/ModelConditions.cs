namespace DeepSeek.Operator.Status;

/// <summary>Condition types and reasons of a DeepSeekModel's status, in one place (reasons are API: alerts match on them).</summary>
public static class ModelConditions
{
    public const string Available = "Available";
    public const string Progressing = "Progressing";
    public const string Degraded = "Degraded";
    /// <summary>Reserved for the autoscaler: the wanted replica count is outside min/max.</summary>
    public const string ScalingLimited = "ScalingLimited";

    public const string ReasonReplicasReady = "ReplicasReady";
    public const string ReasonNoReplicasReady = "NoReplicasReady";
    public const string ReasonScaledToZero = "ScaledToZero";
    public const string ReasonRollingOut = "RollingOut";
    public const string ReasonRolloutComplete = "RolloutComplete";
    public const string ReasonInvalidSpec = "InvalidSpec";
    public const string ReasonReconcileFailed = "ReconcileFailed";
    public const string ReasonAsExpected = "AsExpected";

    public const string True = "True";
    public const string False = "False";
    public const string Unknown = "Unknown";
}
