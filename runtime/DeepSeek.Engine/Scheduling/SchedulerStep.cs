using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.Scheduling;

/// <summary>
/// The plan of one forward pass, and what changed to make room for it. <see cref="FinishedRequestIds"/>
/// are the requests that ended since the previous plan, so the runner can drop their sampling state.
/// </summary>
public sealed record SchedulerStep(
    IReadOnlyList<ScheduledSequence> Sequences,
    IReadOnlyList<EngineRequest> Preempted,
    IReadOnlyList<EngineRequest> Cancelled,
    IReadOnlyList<string> FinishedRequestIds)
{
    public int TotalTokens => Sequences.Sum(s => s.NumTokens);

    /// <summary>Nothing to run (cancellations may still need their final events).</summary>
    public bool IsEmpty => Sequences.Count == 0;
}

/// <summary>
/// What a step did for one request: the token it appended (with the log-probabilities the request
/// asked for), if any, and why it finished, if it did.
/// </summary>
public sealed record RequestProgress(EngineRequest Request, int? NewTokenId, FinishReason? FinishReason, SampledLogprobs? Logprobs = null);
