using DeepSeek.Operator.Tests.Support;
using k8s;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>
/// Reconciles read from the watch caches: a cold start costs each model its creates, one status write
/// and one event, and a cluster at rest costs nothing but the watches (issue 18, operator shape).
/// Counts, not timings: the timings are in the operator's cold-start bench.
/// </summary>
public sealed class ColdStartTests
{
    [Fact]
    public async Task A_cold_start_costs_each_model_its_creates_one_status_write_and_one_event_and_rest_costs_nothing()
    {
        const int models = 20;
        await using var harness = await OperatorHarness.StartAsync();
        for (var i = 0; i < models; i++) await harness.CreateModelAsync(OperatorHarness.Model($"m{i}"));
        harness.StartOperator("operator-a");
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == models
            && (await harness.Admin.CoreV1.ListNamespacedEventAsync("default")).Items.Count == models, TimeSpan.FromSeconds(60), "every model's Deployment");
        await Eventually.HoldsAsync(async () => (await harness.Admin.CustomObjects.ListNamespacedCustomObjectAsync<Api.V1Alpha1.V1Alpha1DeepSeekModelList>(
            Api.V1Alpha1.V1Alpha1DeepSeekModel.Group, Api.V1Alpha1.V1Alpha1DeepSeekModel.Version, "default", Api.V1Alpha1.V1Alpha1DeepSeekModel.Plural)).Items.All(m => m.Status is not null), TimeSpan.FromSeconds(60), "every status written");

        var mine = harness.Server.Requests.Where(r => r.User == "operator-a").ToList();
        var perModel = mine.Where(r => r.Verb is not ("list" or "watch")).GroupBy(r => (r.Verb, r.Resource)).ToDictionary(g => g.Key, g => g.Count());
        var seen = string.Join(", ", mine.GroupBy(r => $"{r.Verb} {r.Resource} {r.Status}").Select(g => $"{g.Key}: {g.Count()}"));
        Assert.True(perModel.Values.Sum() == 6 * models, seen);
        Assert.Equal(models, perModel.GetValueOrDefault(("create", "configmaps")));
        Assert.Equal(models, perModel.GetValueOrDefault(("create", "deployments")));
        Assert.Equal(models, perModel.GetValueOrDefault(("create", "services")));
        Assert.Equal(models, perModel.GetValueOrDefault(("create", "poddisruptionbudgets")));
        Assert.Equal(models, perModel.GetValueOrDefault(("update", "deepseekmodels/status")));
        Assert.Equal(models, perModel.GetValueOrDefault(("create", "events")));
        Assert.Equal(6 * models, perModel.Values.Sum());
        // One list per watched kind, whatever the number of models: models, six owned kinds, pods; never Secrets.
        Assert.Equal(8, mine.Count(r => r.Verb == "list"));
        Assert.DoesNotContain(mine, r => r.Resource == "secrets");

        // At rest (the second reconcile of each model, caused by its own writes, reads the caches): no requests.
        var before = harness.Server.Requests.Count(r => r.User == "operator-a" && r.Verb is not "watch");
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Equal(before, harness.Server.Requests.Count(r => r.User == "operator-a" && r.Verb is not "watch"));
    }
}
