namespace DeepSeek.Runtime.Serving;

public enum ReadinessState
{
    Loading,
    Ready,
    Draining,
    /// <summary>The engine cannot continue; the process is stopping with a non-zero exit code.</summary>
    Failed,
    /// <summary>Loaded, but a rank of its expert-parallel group is missing: not ready until it returns.</summary>
    WaitingForRanks,
}

/// <summary>
/// The runtime's lifecycle as probes see it: <c>/health</c> answers while the process is up,
/// <c>/ready</c> (and gRPC health) only in <see cref="ReadinessState.Ready"/>.
/// </summary>
public sealed class Readiness
{
    private readonly Lock _gate = new();
    private ReadinessState _state = ReadinessState.Loading;
    private string? _missingRanks;

    /// <summary>Raised after every change, outside the lock.</summary>
    public event Action<ReadinessState>? Changed;

    public ReadinessState State
    {
        get { lock (_gate) return Effective; }
    }

    /// <summary>While <see cref="ReadinessState.WaitingForRanks"/>: which ranks are missing and why, for 503 messages.</summary>
    public string? MissingRanks
    {
        get { lock (_gate) return _missingRanks; }
    }

    private ReadinessState Effective => _state == ReadinessState.Ready && _missingRanks is not null ? ReadinessState.WaitingForRanks : _state;

    /// <summary>
    /// The leader's group: null when every rank is ready, else what is missing. Reversible, unlike
    /// draining and failure: the replica turns ready again by itself when the rank returns.
    /// </summary>
    public void SetMissingRanks(string? problem)
    {
        ReadinessState before, after;
        lock (_gate)
        {
            before = Effective;
            _missingRanks = problem;
            after = Effective;
        }
        if (before != after) Changed?.Invoke(after);
    }

    public bool IsReady => State == ReadinessState.Ready;

    public void MarkReady() => Move(from: ReadinessState.Loading, to: ReadinessState.Ready);

    /// <summary>Once draining, the process never becomes ready again.</summary>
    public void MarkDraining() => Move(from: null, to: ReadinessState.Draining);

    /// <summary>Final: a failed replica never serves again.</summary>
    public void MarkFailed() => Move(from: null, to: ReadinessState.Failed);

    private void Move(ReadinessState? from, ReadinessState to)
    {
        ReadinessState after;
        lock (_gate)
        {
            if (_state == to || _state == ReadinessState.Failed || (from is { } required && _state != required)) return;
            _state = to;
            after = Effective;
        }
        Changed?.Invoke(after);
    }
}
