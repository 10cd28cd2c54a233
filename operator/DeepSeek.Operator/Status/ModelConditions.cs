namespace DeepSeek.Operator.Status;

/// <summary>Condition types and reasons of a DeepSeekModel's status, in one place (reasons are API: alerts match on them).</summary>
public static class ModelConditions
{
    public const string Available = "Available";
    public const string Progressing = "Progressing";
    public const string Degraded = "Degraded";
    /// <summary>Written by the autoscaler: True while min/max, a rate limit or busy replicas hold the count back.</summary>
    public const string ScalingLimited = "ScalingLimited";

    public const string ReasonReplicasReady = "ReplicasReady";
    public const string ReasonNoReplicasReady = "NoReplicasReady";
    public const string ReasonScaledToZero = "ScaledToZero";
    public const string ReasonRollingOut = "RollingOut";
    public const string ReasonRolloutComplete = "RolloutComplete";
    public const string ReasonInvalidSpec = "InvalidSpec";
    public const string ReasonReconcileFailed = "ReconcileFailed";
    public const string ReasonAsExpected = "AsExpected";
    /// <summary>The cluster lacks a Kubernetes feature the model needs (docs/operator.md, supported versions).</summary>
    public const string ReasonFeatureUnsupported = "FeatureUnsupported";
    /// <summary>The API server refused a child object; the message is the server's, readable.</summary>
    public const string ReasonWorkloadRefused = "WorkloadRefused";
    /// <summary>
    /// The group token Secret of an expert-parallel model exists but cannot be used (not the model's, no token,
    /// not immutable): the operator never overwrites it; deleting it lets the next reconcile create a new one.
    /// </summary>
    public const string ReasonGroupTokenInvalid = "GroupTokenInvalid";
    /// <summary>Event of an update that restored fields someone else changed on a child.</summary>
    public const string ReasonDriftCorrected = "DriftCorrected";
    /// <summary>Events of the autoscaler's decisions that change the replica count.</summary>
    public const string ReasonScaledUp = "ScaledUp";
    public const string ReasonScaledDown = "ScaledDown";

    public const string True = "True";
    public const string False = "False";
    public const string Unknown = "Unknown";
}
