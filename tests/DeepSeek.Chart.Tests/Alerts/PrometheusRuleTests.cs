using System.Diagnostics;
using System.Text.RegularExpressions;
using DeepSeek.Chart.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace DeepSeek.Chart.Tests.Alerts;

/// <summary>
/// The optional PrometheusRule: off by default, alerts only on metrics the operator and runtime export, and
/// checked by promtool (<c>check rules</c> on the rendered rules, <c>test rules</c> with input series:
/// alerts.test.yaml beside this file). promtool comes with Prometheus: <c>scripts/setup/prometheus.sh</c>.
/// </summary>
public sealed partial class PrometheusRuleTests
{
    /// <summary>The metric names the alerts may use: the runtime's (docs/api.md, Metrics) and the operator's (docs/operator.md).</summary>
    private static readonly HashSet<string> Exported =
    [
        "deepseek_requests_waiting",
        "deepseek_kv_cache_usage_ratio",
        "deepseek_request_failure_total",
        "deepseek_operator_model_replicas",
        "deepseek_operator_drift_corrections_total",
        "deepseek_operator_reconcile_errors_total",
    ];

    private static readonly string[] Alerts =
    [
        "DeepSeekModelNotAvailable",
        "DeepSeekModelQueueGrowing",
        "DeepSeekKVCacheFull",
        "DeepSeekExpertRankLost",
        "DeepSeekOperatorDriftCorrections",
        "DeepSeekOperatorReconcileErrors",
    ];

    [Fact]
    public void Is_off_by_default()
    {
        Assert.DoesNotContain(Manifests.Render(), m => m.Kind == "PrometheusRule");
    }

    [Fact]
    public void Alerts_on_availability_queue_kv_cache_ranks_drift_and_reconcile_errors_with_exported_metrics_only()
    {
        var rule = Rendered();
        Assert.Equal(Helm.ReleaseNamespace, rule.Namespace);
        Assert.Equal("kube-prometheus-stack", rule.ScalarAt("metadata", "labels", "release"));

        var rules = Manifests.Sequence(rule.Root, "spec", "groups").SelectMany(g => Manifests.Sequence(g, "rules")).ToList();
        Assert.Equal(Alerts, rules.Select(r => Manifests.Scalar(r, "alert")));
        foreach (var alert in rules)
        {
            var expr = Manifests.Scalar(alert, "expr")!;
            var used = MetricName().Matches(expr).Select(m => m.Value).ToList();
            Assert.NotEmpty(used);
            Assert.All(used, m => Assert.True(Exported.Contains(m), $"{Manifests.Scalar(alert, "alert")} uses {m}, which nothing exports"));
            // Per model by the one label both the operator's and the runtime's series carry: never the served name.
            Assert.DoesNotMatch(@"\bby \((?:[a-z_, ]*, )?model\b", expr);
            Assert.NotNull(Manifests.Scalar(alert, "labels", "severity"));
            Assert.NotNull(Manifests.Scalar(alert, "annotations", "summary"));
        }
    }

    [Fact]
    public async Task Promtool_checks_the_rules_and_their_unit_tests_pass()
    {
        var promtool = Require("promtool", "scripts/setup/prometheus.sh");
        var directory = Directory.CreateTempSubdirectory("deepseek-alerts-");
        try
        {
            // The rendered PrometheusRule's spec is a Prometheus rule file.
            var spec = Rendered().At("spec")!;
            await using (var writer = File.CreateText(Path.Combine(directory.FullName, "rules.yaml")))
                new YamlStream(new YamlDocument(spec)).Save(writer, assignAnchors: false);
            File.Copy(Repository.PathOf("tests", "DeepSeek.Chart.Tests", "Alerts", "alerts.test.yaml"), Path.Combine(directory.FullName, "alerts.test.yaml"));

            var check = await RunAsync(promtool, directory.FullName, "check", "rules", "rules.yaml");
            Assert.True(check.ExitCode == 0, $"promtool check rules failed:\n{check.Output}");
            Assert.Contains($"SUCCESS: {Alerts.Length} rules found", check.Output, StringComparison.Ordinal);

            var test = await RunAsync(promtool, directory.FullName, "test", "rules", "alerts.test.yaml");
            Assert.True(test.ExitCode == 0, $"promtool test rules failed:\n{test.Output}");
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void Lints_and_rejects_a_bad_ratio()
    {
        Helm.Lint(sets: ["prometheusRule.enabled=true"]).EnsureSuccess("helm lint");
        var bad = Helm.Template(sets: ["prometheusRule.enabled=true", "prometheusRule.kvCacheFullRatio=2"]);

        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("prometheusRule", bad.StandardError, StringComparison.Ordinal);
    }

    private static Manifest Rendered() =>
        Manifests.Render(sets: ["prometheusRule.enabled=true", "prometheusRule.labels.release=kube-prometheus-stack"]).Single("PrometheusRule");

    // scripts/setup/prometheus.sh unpacks promtool into .tools/prometheus; a promtool on PATH also does.
    private static string Require(string name, string setupScript) =>
        new[] { Repository.PathOf(".tools", "prometheus") }
            .Concat((Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException($"'{name}' is not installed; run 'bash {setupScript}' (scripts/test.sh runs it first).");

    private static async Task<(int ExitCode, string Output)> RunAsync(string tool, string directory, params string[] arguments)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = directory };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{tool} did not start");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var output = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var error = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{tool} {string.Join(' ', arguments)} did not finish within 60 s.");
        }
        return (process.ExitCode, await output + await error);
    }

    [GeneratedRegex(@"\bdeepseek_[a-z0-9_]+")]
    private static partial Regex MetricName();
}
