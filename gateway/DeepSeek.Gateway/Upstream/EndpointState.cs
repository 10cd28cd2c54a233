namespace DeepSeek.Gateway.Upstream;

/// <summary>
/// One runtime replica as the gateway sees it: the requests it has in flight through this gateway (the
/// load signal of least-load and of prefix's spill: the gateway's own count, not the runtime's queue) and
/// whether it is ready. Shared by every variant that lists the same URL.
/// </summary>
internal sealed class EndpointState(string url)
{
    private int _inFlight;
    private volatile bool _ready = true;

    /// <summary>The base URL without a trailing slash.</summary>
    public string Url { get; } = url.TrimEnd('/');

    public int InFlight => Volatile.Read(ref _inFlight);

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
