using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.Scheduling;

/// <summary>The plan of one forward pass, and what changed to make room for it.</summary>
public sealed record SchedulerStep(
    IReadOnlyList<ScheduledSequence> Sequences,
    IReadOnlyList<EngineRequest> Preempted,
    IReadOnlyList<EngineRequest> Cancelled)
{
    public int TotalTokens => Sequences.Sum(s => s.NumTokens);

    /// <summary>Nothing to run (cancellations may still need their final events).</summary>
    public bool IsEmpty => Sequences.Count == 0;
}
