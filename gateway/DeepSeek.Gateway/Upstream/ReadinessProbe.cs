using DeepSeek.Contract;

namespace DeepSeek.Gateway.Upstream;

/// <summary>Asks a runtime its readiness: GET <see cref="RuntimeContract.ReadyPath"/> answers 200 once the model is loaded and warm, and not draining.</summary>
internal sealed class ReadinessProbe(HttpClient http)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    /// <summary>Probes and records the answer on <paramref name="endpoint"/>; any failure (refused, timed out, not 200) is "not ready".</summary>
    public async Task<bool> ProbeAsync(EndpointState endpoint, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        deadline.CancelAfter(Timeout);
        bool ready;
        try
        {
            using var response = await http.GetAsync(new Uri(endpoint.Url + RuntimeContract.ReadyPath), deadline.Token);
            ready = response.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !cancellation.IsCancellationRequested)
        {
            ready = false;
        }
        endpoint.MarkReady(ready);
        return ready;
    }
}
