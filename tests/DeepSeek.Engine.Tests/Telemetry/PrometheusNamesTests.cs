using System.Diagnostics.Metrics;
using System.Text.RegularExpressions;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;

namespace DeepSeek.Engine.Tests.Telemetry;

/// <summary>Scrapes OpenTelemetry's Prometheus exporter, as the runtime wires it, and checks the documented names (docs/engine.md, Metrics).</summary>
[Collection(MeterCollection.Name)]
public sealed partial class PrometheusNamesTests
{
    private static readonly string[] DesignNames =
    [
        "deepseek_requests_waiting", "deepseek_requests_running", "deepseek_kv_cache_usage_ratio",
        "deepseek_prompt_tokens_total", "deepseek_generation_tokens_total",
        "deepseek_request_success_total", "deepseek_request_failure_total",
        "deepseek_time_to_first_token_seconds", "deepseek_inter_token_latency_seconds",
        "deepseek_e2e_request_latency_seconds", "deepseek_queue_time_seconds",
        "deepseek_prefix_cache_queries_total", "deepseek_prefix_cache_hits_total",
        "deepseek_expert_tokens_total", "deepseek_expert_load_imbalance_ratio", "deepseek_model_load_seconds",
    ];

    private static readonly string[] Histograms =
    [
        "deepseek_time_to_first_token_seconds", "deepseek_inter_token_latency_seconds",
        "deepseek_e2e_request_latency_seconds", "deepseek_queue_time_seconds",
    ];

    [Fact]
    public async Task Metrics_endpoint_shows_the_design_names_with_model_label()
    {
        var text = await ScrapeAfterRecordingEverything("metrics-names-model");

        var series = SampleLine().Matches(text).Select(m => (Name: m.Groups["name"].Value, Labels: m.Groups["labels"].Value)).ToList();
        var ours = series.Where(s => s.Name.StartsWith("deepseek_", StringComparison.Ordinal)).ToList();
        var families = ours.Select(s => Histograms.FirstOrDefault(h => s.Name == h + "_bucket" || s.Name == h + "_sum" || s.Name == h + "_count") ?? s.Name)
            .ToHashSet();

        Assert.Equal(DesignNames.Order(), families.Order());
        Assert.All(ours, s => Assert.Contains("model=\"metrics-names-model\"", s.Labels));
        Assert.Contains(ours, s => s.Name == "deepseek_request_success_total" && s.Labels.Contains("finish_reason=\"length\""));
        Assert.Contains(ours, s => s.Name == "deepseek_request_failure_total" && s.Labels.Contains("reason=\"overloaded\""));
        Assert.Contains(ours, s => s.Name == "deepseek_expert_tokens_total" && s.Labels.Contains("layer=\"3\"") && s.Labels.Contains("expert=\"1\""));
        Assert.Contains(ours, s => s.Name == "deepseek_expert_load_imbalance_ratio" && s.Labels.Contains("layer=\"3\""));
    }

    [Fact]
    public async Task Latency_histograms_have_buckets_from_a_millisecond_to_minutes()
    {
        var text = await ScrapeAfterRecordingEverything("metrics-buckets-model");
        foreach (var histogram in Histograms)
        {
            var bounds = BucketBound().Matches(text)
                .Where(m => m.Groups["name"].Value == histogram && m.Value.Contains("metrics-buckets-model"))
                .Select(m => m.Groups["le"].Value)
                .ToList();
            Assert.True(EngineMetrics.LatencyBuckets.Count + 1 == bounds.Count, $"{histogram}: {BucketBound().Count(text)} bucket lines, {bounds.Count} of this model");
            Assert.Equal("0.001", bounds[0]);
            Assert.Equal("+Inf", bounds[^1]);
            Assert.Contains("640", bounds);
        }
        // A queue time of 30 ms lands in the 0.05 bucket and not in 0.025.
        Assert.Matches(@"deepseek_queue_time_seconds_bucket\{[^}]*le=""0.025""[^}]*\} 0", text);
        Assert.Matches(@"deepseek_queue_time_seconds_bucket\{[^}]*le=""0.05""[^}]*\} 1", text);
    }

    private static async Task<string> ScrapeAfterRecordingEverything(string model)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(EngineMetrics.MeterName).AddPrometheusExporter());
        await using var app = builder.Build();
        app.MapPrometheusScrapingEndpoint("/metrics");
        await app.StartAsync();

        using var metrics = new EngineMetrics(model, app.Services.GetRequiredService<IMeterFactory>());
        metrics.SetQueueState(waiting: 3, running: 2, kvCacheUsageRatio: 0.25);
        metrics.AddPromptTokens(100);
        metrics.AddGenerationTokens(20);
        metrics.RecordSuccess(FinishReason.Length);
        metrics.RecordFailure("overloaded");
        metrics.RecordTimeToFirstToken(TimeSpan.FromMilliseconds(120));
        metrics.RecordInterTokenLatency(TimeSpan.FromMilliseconds(8));
        metrics.RecordEndToEndLatency(TimeSpan.FromSeconds(2));
        metrics.RecordQueueTime(TimeSpan.FromMilliseconds(30));
        metrics.AddPrefixCacheLookup(100, 64);
        metrics.RecordExpertTokens(3, [0, 5, 2]);
        metrics.SetExpertLoadImbalance(3, 2.1);
        metrics.SetModelLoadTime(TimeSpan.FromSeconds(4.5));

        using var client = app.GetTestClient();
        var text = await client.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        await app.StopAsync();
        return text;
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[^}]*)\})? ", RegexOptions.Multiline)]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"^(?<name>[a-z0-9_]+)_bucket\{[^}]*le=""(?<le>[^""]+)""[^}]*\}", RegexOptions.Multiline)]
    private static partial Regex BucketBound();
}
