namespace DeepSeek.Gateway.Upstream;

/// <summary>
/// Probes every endpoint now and then, so that one found not ready is left out of routing, and one back
/// to ready is routed to again, without a client's request paying for the discovery.
/// </summary>
internal sealed class ReadinessMonitor(ModelTable table, ReadinessProbe probe, TimeProvider time) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        do
        {
            await Task.WhenAll(table.Endpoints.Select(e => probe.ProbeAsync(e, stoppingToken)));
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
