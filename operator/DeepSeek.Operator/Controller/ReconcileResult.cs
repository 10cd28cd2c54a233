namespace DeepSeek.Operator.Controller;

/// <summary>What a reconcile asks of the queue: nothing, a retry with fresh state now, or a look again later.</summary>
public sealed record ReconcileResult(TimeSpan? RequeueAfter, bool Conflict)
{
    public static ReconcileResult Done { get; } = new(null, false);
    public static ReconcileResult Retry { get; } = new(null, true);
    public static ReconcileResult After(TimeSpan delay) => new(delay, false);
}
