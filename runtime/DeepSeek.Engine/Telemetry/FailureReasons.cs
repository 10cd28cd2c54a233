namespace DeepSeek.Engine.Telemetry;

/// <summary>
/// The <c>reason</c> label of <c>deepseek_request_failure_total</c>, and <see cref="Requests.TokenEvent.FailureReason"/>
/// of a request that ended with an error. Stable: alerts and dashboards select on them.
/// </summary>
public static class FailureReasons
{
    /// <summary>Refused at admission: the waiting queue is full.</summary>
    public const string Overloaded = "overloaded";

    /// <summary>Refused at admission: the engine is draining or stopped.</summary>
    public const string Draining = "draining";

    /// <summary>Refused: the request's values are out of range.</summary>
    public const string Invalid = "invalid";

    /// <summary>The client cancelled or went away, or a drain ran out of time.</summary>
    public const string Cancelled = "cancelled";

    /// <summary>The model step that computed the request failed (an out-of-memory error, a bug); the engine went on.</summary>
    public const string ModelStep = "model_step";

    /// <summary>Turning the request's sampled tokens into its output failed (e.g. the detokenizer threw); only this request ended.</summary>
    public const string Output = "output";

    /// <summary>A rank of the expert-parallel group holding some of the step's experts could not be reached.</summary>
    public const string ExpertRankUnavailable = "expert_rank_unavailable";

    /// <summary>The engine failed beyond recovery and ended every request it held.</summary>
    public const string EngineFailed = "engine_failed";

    public static IReadOnlyList<string> All { get; } = [Overloaded, Draining, Invalid, Cancelled, ModelStep, Output, ExpertRankUnavailable, EngineFailed];
}
