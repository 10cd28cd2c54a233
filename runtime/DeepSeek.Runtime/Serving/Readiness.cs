namespace DeepSeek.Runtime.Serving;

public enum ReadinessState
{
    Loading,
    Ready,
    Draining,
    /// <summary>The engine cannot continue; the process is stopping with a non-zero exit code.</summary>
    Failed,
}

/// <summary>
/// The runtime's lifecycle as probes see it: <c>/health</c> answers while the process is up,
/// <c>/ready</c> (and gRPC health) only in <see cref="ReadinessState.Ready"/>.
/// </summary>
public sealed class Readiness
{
    private readonly Lock _gate = new();
    private ReadinessState _state = ReadinessState.Loading;

    /// <summary>Raised after every change, outside the lock.</summary>
    public event Action<ReadinessState>? Changed;

    public ReadinessState State
    {
        get { lock (_gate) return _state; }
    }

    public bool IsReady => State == ReadinessState.Ready;

    public void MarkReady() => Move(from: ReadinessState.Loading, to: ReadinessState.Ready);

    /// <summary>Once draining, the process never becomes ready again.</summary>
    public void MarkDraining() => Move(from: null, to: ReadinessState.Draining);

    /// <summary>Final: a failed replica never serves again.</summary>
    public void MarkFailed() => Move(from: null, to: ReadinessState.Failed);

    private void Move(ReadinessState? from, ReadinessState to)
    {
        lock (_gate)
        {
            if (_state == to || _state == ReadinessState.Failed || (from is { } required && _state != required)) return;
            _state = to;
        }
        Changed?.Invoke(to);
    }
}
