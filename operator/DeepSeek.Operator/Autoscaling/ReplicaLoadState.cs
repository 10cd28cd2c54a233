namespace DeepSeek.Operator.Autoscaling;

public enum ReplicaLoadState
{
    /// <summary>Answered and ready: its queue counts toward the metric.</summary>
    Ready,

    /// <summary>Answered with <c>ready = false</c> (loading or draining): not idle capacity.</summary>
    NotReady,

    /// <summary>No answer (no address yet, refused, timed out): its load is unknown, not zero.</summary>
    Unreachable,
}
