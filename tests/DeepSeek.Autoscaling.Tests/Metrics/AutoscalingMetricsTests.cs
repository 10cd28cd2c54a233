using System.Diagnostics.Metrics;
using System.Net;
using DeepSeek.Operator.Autoscaling;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace DeepSeek.Autoscaling.Tests.Metrics;

/// <summary>
/// The names as Prometheus sees them: recorded through the real OpenTelemetry Prometheus exporter
/// and scraped over HTTP on 127.0.0.1.
/// </summary>
public class AutoscalingMetricsTests
{
    private static ScalingDecision Decision(int current, int desired, ScalingDirection direction) =>
        new(current, desired, direction, ScalingLimit.None, "test", new LoadSummary(current, 0, 0, 0, 0), desired, []);

    [Fact]
    public async Task Exported_names_and_labels_are_the_documented_ones()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http1));
        builder.Services.AddSingleton<AutoscalingMetrics>();
        builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(AutoscalingMetrics.MeterName).AddPrometheusExporter());
        await using var app = builder.Build();
        app.MapPrometheusScrapingEndpoint("/metrics");
        await app.StartAsync();
        try
        {
            var metrics = app.Services.GetRequiredService<AutoscalingMetrics>();
            metrics.Record("serving/v3", Decision(2, 6, ScalingDirection.Up));
            metrics.Record("serving/v3", Decision(6, 6, ScalingDirection.None));
            metrics.Record("serving/lite", Decision(3, 2, ScalingDirection.Down));
            metrics.Record("serving/gone", Decision(1, 1, ScalingDirection.None));
            metrics.Forget("serving/gone");

            var text = await ScrapeAsync(app);
            var lines = text.Split('\n');

            Assert.Contains("# TYPE deepseek_operator_desired_replicas gauge", lines);
            Assert.Contains("# TYPE deepseek_operator_scaling_decisions_total counter", lines);
            Assert.Equal("6", Sample(lines, "deepseek_operator_desired_replicas{", "deepseekmodel=\"serving/v3\""));
            Assert.Equal("2", Sample(lines, "deepseek_operator_desired_replicas{", "deepseekmodel=\"serving/lite\""));
            Assert.Null(Sample(lines, "deepseek_operator_desired_replicas{", "deepseekmodel=\"serving/gone\""));
            Assert.Equal("1", Sample(lines, "deepseek_operator_scaling_decisions_total{", "direction=\"up\"", "deepseekmodel=\"serving/v3\""));
            Assert.Equal("1", Sample(lines, "deepseek_operator_scaling_decisions_total{", "direction=\"none\"", "deepseekmodel=\"serving/v3\""));
            Assert.Equal("1", Sample(lines, "deepseek_operator_scaling_decisions_total{", "direction=\"down\"", "deepseekmodel=\"serving/lite\""));
        }
        finally
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await app.StopAsync(stop.Token);
        }
    }

    [Fact]
    public void Desired_replicas_gauge_reports_the_latest_decision_per_model()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var metrics = new AutoscalingMetrics(services.GetRequiredService<IMeterFactory>());
        var seen = new Dictionary<string, int>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == AutoscalingMetrics.MeterName && instrument.Name == AutoscalingMetrics.DesiredReplicasName)
                l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<int>((_, value, tags, _) => seen[(string)tags[0].Value!] = value);
        listener.Start();

        metrics.Record("a/m", Decision(2, 4, ScalingDirection.Up));
        metrics.Record("a/m", Decision(4, 5, ScalingDirection.Up));
        listener.RecordObservableInstruments();

        Assert.Equal(new Dictionary<string, int> { ["a/m"] = 5 }, seen);
    }

    private static async Task<string> ScrapeAsync(WebApplication app)
    {
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        return await http.GetStringAsync(new Uri(new Uri(address), "/metrics"));
    }

    /// <summary>The value of the sample line that starts with <paramref name="prefix"/> and has all <paramref name="labels"/>.</summary>
    private static string? Sample(string[] lines, string prefix, params string[] labels) =>
        lines.Where(l => l.StartsWith(prefix, StringComparison.Ordinal) && labels.All(label => l.Contains(label, StringComparison.Ordinal)))
            .Select(l => l[(l.LastIndexOf('}') + 2)..].Split(' ')[0])
            .SingleOrDefault();
}
