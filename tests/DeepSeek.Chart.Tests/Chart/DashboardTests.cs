using System.Text.Json;
using System.Text.RegularExpressions;
using DeepSeek.Chart.Tests.Infrastructure;

namespace DeepSeek.Chart.Tests.Chart;

/// <summary>The Grafana dashboard queries only metrics the runtime and operator export.</summary>
public sealed partial class DashboardTests
{
    /// <summary>The runtime's metric names (docs/api.md, Metrics), plus the operator's per-model gauges.</summary>
    private static readonly HashSet<string> KnownMetrics =
    [
        "deepseek_requests_waiting",
        "deepseek_requests_running",
        "deepseek_kv_cache_usage_ratio",
        "deepseek_prompt_tokens_total",
        "deepseek_generation_tokens_total",
        "deepseek_request_success_total",
        "deepseek_request_failure_total",
        "deepseek_time_to_first_token_seconds",
        "deepseek_inter_token_latency_seconds",
        "deepseek_e2e_request_latency_seconds",
        "deepseek_queue_time_seconds",
        "deepseek_prefix_cache_queries_total",
        "deepseek_prefix_cache_hits_total",
        "deepseek_expert_tokens_total",
        "deepseek_expert_load_imbalance_ratio",
        "deepseek_model_load_seconds",
        "deepseek_operator_desired_replicas",
        "deepseek_operator_model_replicas",
    ];

    private static readonly HashSet<string> Histograms =
    [
        "deepseek_time_to_first_token_seconds",
        "deepseek_inter_token_latency_seconds",
        "deepseek_e2e_request_latency_seconds",
        "deepseek_queue_time_seconds",
        "deepseek_model_load_seconds",
    ];

    private static string DashboardPath => Path.Combine(Repository.ChartDirectory, "dashboards", "deepseek-runtime.json");

    [Fact]
    public void Every_metric_the_dashboard_queries_is_exported()
    {
        var used = MetricsIn(Queries(ParseDashboard(File.ReadAllText(DashboardPath))));

        Assert.NotEmpty(used);
        Assert.All(used, metric => Assert.True(KnownMetrics.Contains(metric), $"{metric} is not a metric the runtime or operator exports"));
    }

    [Fact]
    public void Dashboard_covers_queue_batch_cache_latency_throughput_experts_and_replicas()
    {
        var queries = Queries(ParseDashboard(File.ReadAllText(DashboardPath)));

        Assert.Contains(queries, q => q.Contains("deepseek_requests_waiting", StringComparison.Ordinal));
        Assert.Contains(queries, q => q.Contains("deepseek_requests_running", StringComparison.Ordinal));
        Assert.Contains(queries, q => q.Contains("deepseek_kv_cache_usage_ratio", StringComparison.Ordinal));
        Assert.Contains(queries, q => q.Contains("histogram_quantile(0.99", StringComparison.Ordinal)
            && q.Contains("deepseek_time_to_first_token_seconds_bucket", StringComparison.Ordinal));
        Assert.Contains(queries, q => q.Contains("histogram_quantile(0.99", StringComparison.Ordinal)
            && q.Contains("deepseek_inter_token_latency_seconds_bucket", StringComparison.Ordinal));
        Assert.Contains(queries, q => q.Contains("rate(deepseek_generation_tokens_total", StringComparison.Ordinal));
        Assert.Contains(queries, q => q.Contains("deepseek_expert_load_imbalance_ratio", StringComparison.Ordinal));
        Assert.Contains(queries, q => q.Contains("deepseek_operator_desired_replicas", StringComparison.Ordinal));
    }

    [Fact]
    public void Runtime_and_operator_series_are_selected_and_joined_by_one_label_deepseekmodel()
    {
        var dashboard = ParseDashboard(File.ReadAllText(DashboardPath));
        var targets = Queries(dashboard.GetProperty("panels")).Where(q => q.Contains("deepseek_", StringComparison.Ordinal)).ToList();

        // deepseekmodel (namespace/name) is on the operator's per-model series and, through the chart's PodMonitor, on
        // the runtime's; the runtime's model label (its served name) would lose the operator's series in a join.
        Assert.All(targets, q =>
        {
            Assert.Contains("deepseekmodel=~\"$deepseekmodel\"", q, StringComparison.Ordinal);
            Assert.Matches(@"\bby \((?:le, )?deepseekmodel\b", q);
            Assert.DoesNotMatch(@"[{,(]\s*model\s*[=~!,)]", q);
        });
        var variable = dashboard.GetProperty("templating").GetProperty("list").EnumerateArray().Single(v => v.GetProperty("name").GetString() == "deepseekmodel");
        Assert.Equal("label_values(deepseek_requests_waiting, deepseekmodel)", variable.GetProperty("definition").GetString());

        var replicas = dashboard.GetProperty("panels").EnumerateArray().Single(p => p.GetProperty("title").GetString() == "Replicas");
        var queries = Queries(replicas);
        Assert.Contains(queries, q => q.Contains("deepseek_operator_model_replicas{", StringComparison.Ordinal) && q.Contains("state=\"desired\"", StringComparison.Ordinal));
        Assert.Contains(queries, q => q.Contains("deepseek_operator_model_replicas{", StringComparison.Ordinal) && q.Contains("state=\"ready\"", StringComparison.Ordinal));
        Assert.Contains(queries, q => q.Contains("deepseek_requests_running{", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_panel_queries_the_selected_prometheus_data_source()
    {
        var dashboard = ParseDashboard(File.ReadAllText(DashboardPath));
        var panels = dashboard.GetProperty("panels").EnumerateArray().ToList();

        Assert.NotEmpty(panels);
        Assert.Equal(panels.Count, panels.Select(p => p.GetProperty("id").GetInt32()).Distinct().Count());
        foreach (var panel in panels)
        {
            Assert.Equal("${datasource}", panel.GetProperty("datasource").GetProperty("uid").GetString());
            Assert.NotEmpty(panel.GetProperty("targets").EnumerateArray());
        }
    }

    [Fact]
    public void Config_map_carries_the_dashboard_for_grafanas_sidecar_when_enabled()
    {
        Assert.DoesNotContain(Manifests.Render().Of("operator"), m => m.Kind == "ConfigMap");

        var configMap = Manifests.Render(sets: ["grafana.dashboards.enabled=true"]).Of("operator").Single("ConfigMap");

        Assert.Equal("1", configMap.ScalarAt("metadata", "labels", "grafana_dashboard"));
        Assert.Equal(
            JsonSerializer.Serialize(ParseDashboard(File.ReadAllText(DashboardPath))),
            JsonSerializer.Serialize(ParseDashboard(configMap.ScalarAt("data", "deepseek-runtime.json")!)));
    }

    private static JsonElement ParseDashboard(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    /// <summary>Every PromQL string in the dashboard: panel targets and templating queries.</summary>
    private static List<string> Queries(JsonElement element)
    {
        var found = new List<string>();
        Collect(element, found);
        return found;

        static void Collect(JsonElement element, List<string> found)
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        if (property.Name is "expr" or "query" or "definition" && property.Value.ValueKind == JsonValueKind.String)
                        {
                            found.Add(property.Value.GetString()!);
                        }
                        else
                        {
                            Collect(property.Value, found);
                        }
                    }

                    break;
                case JsonValueKind.Array:
                    foreach (var item in element.EnumerateArray())
                    {
                        Collect(item, found);
                    }

                    break;
            }
        }
    }

    /// <summary>Metric names in the queries; a histogram's _bucket/_sum/_count series count as the histogram.</summary>
    private static HashSet<string> MetricsIn(IEnumerable<string> queries)
    {
        var metrics = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match match in queries.SelectMany(q => MetricName().Matches(q)))
        {
            var name = match.Value;
            var histogram = Histograms.FirstOrDefault(h => name == h + "_bucket" || name == h + "_sum" || name == h + "_count");
            metrics.Add(histogram ?? name);
        }

        return metrics;
    }

    [GeneratedRegex(@"\bdeepseek_[a-z0-9_]+")]
    private static partial Regex MetricName();
}
