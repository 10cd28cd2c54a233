using System.Net;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Leadership;
using DeepSeek.Operator.Security;
using DeepSeek.Operator.Tests.Support;
using k8s;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>The operator's own /healthz, /readyz and /metrics, served by the real host on loopback ports.</summary>
public sealed class OperatorEndpointTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static readonly LeaderElectionSettings Lease = new()
    {
        LeaseName = "endpoints-test",
        LeaseDuration = TimeSpan.FromSeconds(3),
        RenewDeadline = TimeSpan.FromSeconds(2),
        RetryPeriod = TimeSpan.FromMilliseconds(200),
    };

    private static async Task<(HttpStatusCode Status, string Body)> GetAsync(HttpClient http, int port, string path)
    {
        using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}{path}"));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Readyz_waits_for_the_leaders_watches_and_a_standby_is_ready()
    {
        await using var harness = await OperatorHarness.StartAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        // Until the operator may list PodDisruptionBudgets, one of its watches cannot sync.
        var allowPdbList = false;
        harness.Server.Authorizer = (user, group, resource, verb) =>
            user == "admin" || (OperatorPermissions.Allows(group, resource, verb) && (allowPdbList || resource != "poddisruptionbudgets" || verb != "list"));

        int healthA = FreePort.Next(), metricsA = FreePort.Next();
        harness.StartOperator("operator-a", Lease, leaderElect: true, healthPort: healthA, metricsPort: metricsA);

        await Eventually.HoldsAsync(async () => (await GetAsync(http, healthA, "/healthz")).Status == HttpStatusCode.OK, Wait, "/healthz answers 200");
        await Eventually.HoldsAsync(async () => (await GetAsync(http, healthA, "/readyz")).Body == "leader: waiting for the watches to list", Wait, "the leader says it waits for its watches");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await GetAsync(http, healthA, "/readyz")).Status);
        // The watches start together; the PDB list may come a moment after /readyz first answers.
        await Eventually.HoldsAsync(() => Task.FromResult(harness.Server.Requests.Any(r => r.User == "operator-a" && r.Resource == "poddisruptionbudgets" && r.Status == 403)), Wait, "the PDB list refused");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await GetAsync(http, healthA, "/readyz")).Status);

        allowPdbList = true;
        await Eventually.HoldsAsync(async () => (await GetAsync(http, healthA, "/readyz")) is (HttpStatusCode.OK, "leader: watches synced"), Wait, "the leader is ready once its watches listed");

        int healthB = FreePort.Next();
        harness.StartOperator("operator-b", Lease, leaderElect: true, healthPort: healthB);
        await Eventually.HoldsAsync(async () => (await GetAsync(http, healthB, "/readyz")) is (HttpStatusCode.OK, "standby: following the leader lease"), Wait, "the standby is ready");
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(http, healthB, "/healthz")).Status);
        // Each endpoint is served on its own port only.
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(http, healthA, "/metrics")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(http, metricsA, "/healthz")).Status);
    }

    [Fact]
    public async Task Metrics_export_reconciles_errors_durations_queue_depth_and_leadership()
    {
        await using var harness = await OperatorHarness.StartAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        int health = FreePort.Next(), metrics = FreePort.Next();
        harness.StartOperator("operator-a", healthPort: health, metricsPort: metrics);
        await harness.CreateModelAsync(OperatorHarness.Model("lite"));
        // lite's children and status first, so the fault can only meet other's reconcile (with several workers
        // the two run at once, and a fault on lite's ConfigMap would leave lite's series absent until its retry).
        await Eventually.HoldsAsync(async () => (await harness.GetModelAsync("lite")).Status?.ObservedGeneration is not null, Wait, "lite reconciled");
        // One failed reconcile: other's first ConfigMap create gets a 500.
        harness.Server.InjectFault("create", "configmaps", 500);
        await harness.CreateModelAsync(OperatorHarness.Model("other"));

        string text = "";
        await Eventually.HoldsAsync(async () =>
        {
            text = (await GetAsync(http, metrics, "/metrics")).Body;
            // Leadership is read in the same scrape: on a loaded machine a renewal can be late and the lease briefly lost.
            return Sample(text, "deepseek_operator_reconcile_errors_total") >= 1 && Sample(text, "deepseek_operator_reconciles_total", "result=\"success\"") >= 2
                && Sample(text, "deepseek_operator_leader") == 1;
        }, Wait, "reconciles and an error are counted, while leading");

        Assert.Contains("# TYPE deepseek_operator_reconciles_total counter", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE deepseek_operator_reconcile_errors_total counter", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE deepseek_operator_reconcile_duration_seconds histogram", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE deepseek_operator_workqueue_depth gauge", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE deepseek_operator_leader gauge", text, StringComparison.Ordinal);
        Assert.True(Sample(text, "deepseek_operator_reconcile_errors_total") >= 1);
        Assert.Equal(Sample(text, "deepseek_operator_reconcile_errors_total"), Sample(text, "deepseek_operator_reconciles_total", "result=\"error\""));
        Assert.True(Sample(text, "deepseek_operator_reconcile_duration_seconds_count") >= 3);
        Assert.Equal(Sample(text, "deepseek_operator_reconcile_duration_seconds_count"), Sample(text, "deepseek_operator_reconcile_duration_seconds_bucket", "le=\"+Inf\""));
        // Buckets sized for seconds (the SDK's default boundaries, 0 to 10000, suit milliseconds).
        foreach (var le in new[] { "0.005", "0.1", "1", "60" })
            Assert.True(Sample(text, "deepseek_operator_reconcile_duration_seconds_bucket", $"le=\"{le}\"") >= 0, $"no bucket le={le}");
        Assert.Equal(-1, Sample(text, "deepseek_operator_reconcile_duration_seconds_bucket", "le=\"10000\""));
        Assert.True(Sample(text, "deepseek_operator_workqueue_depth") >= 0);
        Assert.Equal(1, Sample(text, "deepseek_operator_leader"));
        // Per model, by namespace/name (the chart's PodMonitor gives the runtime series the same deepseekmodel label).
        Assert.Contains("# TYPE deepseek_operator_model_replicas gauge", text, StringComparison.Ordinal);
        Assert.Equal(1, Sample(text, "deepseek_operator_model_replicas", "deepseekmodel=\"default/lite\",state=\"desired\""));
        Assert.Equal(0, Sample(text, "deepseek_operator_model_replicas", "deepseekmodel=\"default/lite\",state=\"ready\""));

        // A deleted model's series go.
        await harness.Admin.CustomObjects.DeleteNamespacedCustomObjectAsync(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, "default", V1Alpha1DeepSeekModel.Plural, "lite");
        await Eventually.HoldsAsync(async () => Sample((await GetAsync(http, metrics, "/metrics")).Body, "deepseek_operator_model_replicas", "deepseekmodel=\"default/lite\"") == -1,
            Wait, "the deleted model's series gone");
    }

    [Fact]
    public async Task Each_endpoint_listens_only_on_its_bind_address()
    {
        await using var harness = await OperatorHarness.StartAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        int health = FreePort.Next(), metrics = FreePort.Next();
        harness.StartOperator("operator-a", healthPort: health, metricsPort: metrics, metricsAddress: IPAddress.Parse("127.0.0.2"));
        await Eventually.HoldsAsync(async () =>
        {
            using var response = await http.GetAsync(new Uri($"http://127.0.0.2:{metrics}/metrics"));
            return response.StatusCode == HttpStatusCode.OK;
        }, Wait, "/metrics answers on its bind address");
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(http, health, "/healthz")).Status);
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync(new Uri($"http://127.0.0.1:{metrics}/metrics")));
    }

    [Fact]
    public async Task Endpoints_answer_whatever_the_Host_header_says()
    {
        await using var harness = await OperatorHarness.StartAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        int health = FreePort.Next(), metrics = FreePort.Next();
        harness.StartOperator("operator-a", healthPort: health, metricsPort: metrics);
        await Eventually.HoldsAsync(async () => (await GetAsync(http, health, "/healthz")).Status == HttpStatusCode.OK, Wait, "/healthz answers 200");

        // kubectl port-forward and gateways rewrite Host; the port the connection arrived on decides.
        async Task<HttpStatusCode> WithHost(int port, string path)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"http://127.0.0.1:{port}{path}"));
            request.Headers.Host = "localhost:9";
            using var response = await http.SendAsync(request);
            return response.StatusCode;
        }
        Assert.Equal(HttpStatusCode.OK, await WithHost(health, "/healthz"));
        Assert.Equal(HttpStatusCode.OK, await WithHost(metrics, "/metrics"));
        Assert.Equal(HttpStatusCode.NotFound, await WithHost(health, "/metrics"));
        Assert.Equal(HttpStatusCode.NotFound, await WithHost(metrics, "/healthz"));
    }

    /// <summary>
    /// The value of the sample named <paramref name="name"/> whose labels include <paramref name="labels"/>
    /// (<c>key="value"</c>, comma-separated), or -1. The exporter adds labels of its own (otel_scope_name).
    /// </summary>
    private static double Sample(string text, string name, string labels = "")
    {
        var wanted = labels.Length == 0 ? [] : labels.Split(',');
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith('#') || line.Length == 0) continue;
            var nameEnd = line.IndexOfAny([' ', '{']);
            if (nameEnd < 0 || line[..nameEnd] != name) continue;
            var have = line[nameEnd] == '{' ? line[(nameEnd + 1)..line.IndexOf('}', StringComparison.Ordinal)].Split(',') : [];
            if (!wanted.All(have.Contains)) continue;
            return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        }
        return -1;
    }
}
