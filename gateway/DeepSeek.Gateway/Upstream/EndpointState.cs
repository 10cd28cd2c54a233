namespace DeepSeek.Gateway.Upstream;

/// <summary>
/// One runtime replica as the gateway sees it: its load (the requests it has in flight through this
/// gateway, and what the runtime itself last reported) and whether it is ready. Shared by every variant
/// that lists the same URL.
/// </summary>
internal sealed class EndpointState(string url)
{
    private int _inFlight;
    private volatile int _runtimeLoad = -1;
    private volatile bool _ready = true;

    /// <summary>The base URL without a trailing slash.</summary>
    public string Url { get; } = url.TrimEnd('/');

    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Waiting plus running requests as the runtime last reported them (<see cref="RuntimeLoadMonitor"/>); null when unknown.</summary>
    public int? RuntimeLoad => _runtimeLoad is var load and >= 0 ? load : null;

    /// <summary>
    /// What least-load and prefix's spill weigh: the gateway's own count in flight (exact and current), or
    /// the runtime's report when that is higher (traffic that came another way; up to a poll interval old).
    /// </summary>
    public int Load => Math.Max(InFlight, RuntimeLoad ?? 0);

    public void ReportRuntimeLoad(int? load) => _runtimeLoad = load is >= 0 ? load.Value : -1;

    /// <summary>
    /// True until a readiness probe or a forward says otherwise: an endpoint is tried before it was ever
    /// probed (a failed connection then marks it and the request moves on).
    /// </summary>
    public bool Ready => _ready;

    public void MarkReady(bool ready) => _ready = ready;

    /// <summary>Counts a request in flight until the returned handle is disposed.</summary>
    public InFlightLease Enter()
    {
        Interlocked.Increment(ref _inFlight);
        return new InFlightLease(this);
    }

    internal void Leave() => Interlocked.Decrement(ref _inFlight);
}

internal readonly struct InFlightLease(EndpointState endpoint) : IDisposable
{
    public void Dispose() => endpoint.Leave();
}
