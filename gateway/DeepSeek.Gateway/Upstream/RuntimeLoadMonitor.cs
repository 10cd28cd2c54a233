using System.Globalization;

namespace DeepSeek.Gateway.Upstream;

/// <summary>
/// Reads every endpoint's own load now and then: the runtime's <c>/metrics</c> gauges
/// <c>deepseek_requests_waiting</c> and <c>deepseek_requests_running</c> (design.md §6), summed over their
/// series. Routing weighs the higher of that and the gateway's own count in flight
/// (<see cref="EndpointState.Load"/>), so traffic that reaches a runtime another way (a second gateway,
/// a client inside the cluster) counts too. An endpoint that does not answer keeps no reported load.
/// </summary>
internal sealed class RuntimeLoadMonitor(ModelTable table, HttpClient http, TimeProvider time) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);

    private static readonly string[] Gauges = ["deepseek_requests_waiting", "deepseek_requests_running"];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        do
        {
            await Task.WhenAll(table.Endpoints.Select(e => ReadAsync(e, stoppingToken)));
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private async Task ReadAsync(EndpointState endpoint, CancellationToken cancellation)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        deadline.CancelAfter(Timeout);
        int? load;
        try
        {
            load = Parse(await http.GetStringAsync(new Uri(endpoint.Url + "/metrics"), deadline.Token));
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !cancellation.IsCancellationRequested)
        {
            load = null;
        }
        endpoint.ReportRuntimeLoad(load);
    }

    /// <summary>
    /// Waiting plus running requests from a Prometheus text exposition, every series of both gauges summed;
    /// null when neither is there (not one of our runtimes, or an exposition of another kind).
    /// </summary>
    public static int? Parse(string exposition)
    {
        ArgumentNullException.ThrowIfNull(exposition);
        double total = 0;
        var found = false;
        foreach (var raw in exposition.AsSpan().EnumerateLines())
        {
            var line = raw.Trim();
            if (line.IsEmpty || line[0] == '#') continue;
            foreach (var gauge in Gauges)
            {
                if (!line.StartsWith(gauge, StringComparison.Ordinal) || line.Length == gauge.Length || line[gauge.Length] is not ('{' or ' ')) continue;
                // The value follows the series' name and labels: the last field but an optional timestamp.
                var rest = line[gauge.Length..];
                var close = rest.LastIndexOf('}');
                var fields = rest[(close + 1)..].Trim().ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length >= 1 && double.TryParse(fields[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value) && value >= 0)
                {
                    total += value;
                    found = true;
                }
            }
        }
        return found ? (int)Math.Min(total, int.MaxValue) : null;
    }
}
