namespace DeepSeek.Engine.Telemetry;

/// <summary>
/// Generated tokens per second over a sliding window: the engine thread adds each step's tokens,
/// any thread reads the rate. Thread-safe; time comes from the injected clock.
/// </summary>
public sealed class TokenRateWindow(TimeProvider time, TimeSpan window)
{
    private readonly Queue<(long Timestamp, int Tokens)> _steps = new();
    private readonly Lock _lock = new();
    private long _tokensInWindow;

    public void Add(int tokens)
    {
        if (tokens <= 0) return;
        var now = time.GetTimestamp();
        lock (_lock)
        {
            _steps.Enqueue((now, tokens));
            _tokensInWindow += tokens;
            Trim(now);
        }
    }

    /// <summary>Tokens of the steps inside the window, divided by the window's length.</summary>
    public double TokensPerSecond()
    {
        lock (_lock)
        {
            Trim(time.GetTimestamp());
            return _tokensInWindow / window.TotalSeconds;
        }
    }

    private void Trim(long now)
    {
        while (_steps.TryPeek(out var oldest) && time.GetElapsedTime(oldest.Timestamp, now) > window)
            _tokensInWindow -= _steps.Dequeue().Tokens;
    }
}
