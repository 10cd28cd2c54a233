namespace DeepSeek.Engine.Telemetry;

/// <summary>
/// The moments of one request that the latency metrics measure, read from the injected clock. Each
/// Mark returns the span to record (or null when there is nothing new to record).
/// </summary>
public sealed class RequestTimings
{
    private readonly TimeProvider _time;
    private readonly long _arrival;
    private long? _scheduled;
    private long? _lastToken;

    public RequestTimings(TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        _arrival = time.GetTimestamp();
    }

    /// <summary>Queue time, on the first scheduled step only (a preempted request's requeue is not a new arrival).</summary>
    public TimeSpan? MarkScheduled()
    {
        if (_scheduled is not null) return null;
        _scheduled = _time.GetTimestamp();
        return _time.GetElapsedTime(_arrival, _scheduled.Value);
    }

    /// <summary>For a new token: time to first token, or the inter-token latency after the first.</summary>
    public (TimeSpan? TimeToFirstToken, TimeSpan? InterTokenLatency) MarkToken()
    {
        var now = _time.GetTimestamp();
        var previous = _lastToken;
        _lastToken = now;
        return previous is null
            ? (_time.GetElapsedTime(_arrival, now), null)
            : (null, _time.GetElapsedTime(previous.Value, now));
    }

    /// <summary>End-to-end latency.</summary>
    public TimeSpan MarkFinished() => _time.GetElapsedTime(_arrival, _time.GetTimestamp());
}
