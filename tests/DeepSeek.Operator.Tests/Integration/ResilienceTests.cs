using System.Net;
using System.Text.Json.Nodes;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Leadership;
using DeepSeek.Operator.Security;
using DeepSeek.Operator.Tests.Support;
using k8s;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>
/// What the operator survives: an object it cannot read, API server outages of any length, and a
/// lease it may not touch (issue 18, defects 2, 3 and 9).
/// </summary>
public sealed class ResilienceTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static Task<JsonObject> RawModelAsync(OperatorHarness harness, string name) =>
        harness.Admin.CustomObjects.GetNamespacedCustomObjectAsync<JsonObject>(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, "default", V1Alpha1DeepSeekModel.Plural, name);

    private static async Task<bool> HasDeploymentAsync(OperatorHarness harness, string name) =>
        (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Any(d => d.Metadata.Name == name);

    [Fact]
    public async Task A_model_that_cannot_be_read_is_degraded_naming_the_field_and_every_other_model_is_reconciled()
    {
        await using var harness = await OperatorHarness.StartAsync();
        // Stored before the operator starts (as after a restart), as an older CRD without the quantity
        // pattern admitted it: "lots" is no quantity, and KubernetesClient's typed read throws on it.
        var bad = JsonNode.Parse("""
            {"apiVersion":"serving.deepseek-operator.io/v1alpha1","kind":"DeepSeekModel","metadata":{"name":"bad","namespace":"default"},
             "spec":{"model":{"source":{"pvc":{"claimName":"weights"}}},"runtime":{"resources":{"limits":{"cpu":"lots"}}}}}
            """)!.AsObject();
        await harness.Admin.CustomObjects.CreateNamespacedCustomObjectAsync(bad, V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, "default", V1Alpha1DeepSeekModel.Plural);
        await harness.CreateModelAsync(OperatorHarness.Model("good"));
        harness.StartOperator("operator-a");

        await Eventually.HoldsAsync(() => HasDeploymentAsync(harness, "good"), Wait, "the readable model is reconciled");
        await Eventually.HoldsAsync(async () => (await RawModelAsync(harness, "bad"))["status"]?["conditions"]?.AsArray()
            .Any(c => (string?)c!["type"] == "Degraded" && (string?)c["status"] == "True" && ((string?)c["message"] ?? "").Contains("spec.runtime.resources.limits.cpu", StringComparison.Ordinal)) == true,
            Wait, "the unreadable model is Degraded, naming the field");
        var degraded = (await RawModelAsync(harness, "bad"))["status"]!["conditions"]!.AsArray().Single(c => (string?)c!["type"] == "Degraded")!;
        Assert.Equal("InvalidSpec", (string?)degraded["reason"]);

        // The watch is alive: a model created now is reconciled too.
        await harness.CreateModelAsync(OperatorHarness.Model("later"));
        await Eventually.HoldsAsync(() => HasDeploymentAsync(harness, "later"), Wait, "a model created afterwards is reconciled");
        Assert.False(await HasDeploymentAsync(harness, "bad"));
    }

    [Fact]
    public async Task A_three_second_outage_is_survived_without_losing_leadership()
    {
        await using var harness = await OperatorHarness.StartAsync();
        var lease = new LeaderElectionSettings { LeaseName = "outage-short", LeaseDuration = TimeSpan.FromSeconds(15), RenewDeadline = TimeSpan.FromSeconds(10), RetryPeriod = TimeSpan.FromMilliseconds(500) };
        var (_, run) = harness.StartOperator("operator-a", lease, leaderElect: true);
        await harness.CreateModelAsync(OperatorHarness.Model("before"));
        await Eventually.HoldsAsync(() => HasDeploymentAsync(harness, "before"), Wait, "reconciled before the outage");
        var transitions = (await harness.Admin.CoordinationV1.ReadNamespacedLeaseAsync(lease.LeaseName, "default")).Spec.LeaseTransitions;

        await harness.Server.OutageAsync(TimeSpan.FromSeconds(3));

        await harness.CreateModelAsync(OperatorHarness.Model("after"));
        await Eventually.HoldsAsync(() => HasDeploymentAsync(harness, "after"), Wait, "reconciled after the outage");
        Assert.False(run.IsCompleted, run.Exception?.ToString() ?? "the operator stopped");
        var held = await harness.Admin.CoordinationV1.ReadNamespacedLeaseAsync(lease.LeaseName, "default");
        Assert.Equal("operator-a", held.Spec.HolderIdentity);
        Assert.Equal(transitions, held.Spec.LeaseTransitions);
    }

    [Fact]
    public async Task An_outage_past_the_renew_deadline_stops_work_and_the_process_leads_again_after_it()
    {
        await using var harness = await OperatorHarness.StartAsync();
        var loggers = new RecordingLoggers();
        var lease = new LeaderElectionSettings { LeaseName = "outage-long", LeaseDuration = TimeSpan.FromSeconds(3), RenewDeadline = TimeSpan.FromSeconds(2), RetryPeriod = TimeSpan.FromMilliseconds(300) };
        var (_, run) = harness.StartOperator("operator-a", lease, leaderElect: true, loggers: loggers);
        await harness.CreateModelAsync(OperatorHarness.Model("before"));
        await Eventually.HoldsAsync(() => HasDeploymentAsync(harness, "before"), Wait, "reconciled before the outage");

        await harness.Server.OutageAsync(TimeSpan.FromSeconds(5));

        await harness.CreateModelAsync(OperatorHarness.Model("after"));
        await Eventually.HoldsAsync(() => HasDeploymentAsync(harness, "after"), Wait, "reconciled after the outage");
        Assert.False(run.IsCompleted, run.Exception?.ToString() ?? "the operator stopped");
        Assert.Contains(loggers.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("could not renew the lease", StringComparison.Ordinal));
        Assert.Contains(loggers.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("lease default/outage-long", StringComparison.Ordinal));
        Assert.Equal("operator-a", (await harness.Admin.CoordinationV1.ReadNamespacedLeaseAsync(lease.LeaseName, "default")).Spec.HolderIdentity);
    }

    [Fact]
    public async Task A_lease_the_operator_may_not_touch_is_logged_at_warning_with_the_cause_and_readyz_says_so()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.Server.Authorizer = (user, group, resource, verb) => user == "admin" || (resource != "leases" && OperatorPermissions.Allows(group, resource, verb));
        var loggers = new RecordingLoggers();
        var health = FreePort.Next();
        var lease = new LeaderElectionSettings { LeaseName = "forbidden", RetryPeriod = TimeSpan.FromMilliseconds(200) };
        harness.StartOperator("operator-a", lease, leaderElect: true, healthPort: health, loggers: loggers);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };

        string body = "";
        await Eventually.HoldsAsync(async () =>
        {
            using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{health}/readyz"));
            body = await response.Content.ReadAsStringAsync();
            return response.StatusCode == HttpStatusCode.ServiceUnavailable && body.StartsWith("waiting for the leader lease: lease default/forbidden: 403", StringComparison.Ordinal);
        }, Wait, "/readyz names the lease and the 403");
        Assert.Contains("forbidden", body, StringComparison.Ordinal);
        Assert.Contains(loggers.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("403", StringComparison.Ordinal) && e.Message.Contains("forbidden", StringComparison.Ordinal));
    }
}
