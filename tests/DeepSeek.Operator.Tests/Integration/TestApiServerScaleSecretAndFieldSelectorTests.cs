using System.Net;
using System.Text.Json;
using DeepSeek.Operator.Api.V1Alpha1;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>
/// What the gateway's cluster mode relies on, as the Kubernetes API does it: a merge patch of the scale
/// subresource (applied to the Scale, its resourceVersion a precondition, the Scale answered), a Secret's
/// write-only stringData folded into data, and a watch narrowed by a metadata.name field selector.
/// </summary>
public sealed class TestApiServerScaleSecretAndFieldSelectorTests
{
    [Fact]
    public async Task A_merge_patch_of_the_scale_subresource_sets_spec_replicas_and_honours_its_resource_version()
    {
        await using var harness = await OperatorHarness.StartAsync();
        await harness.CreateModelAsync(OperatorHarness.Model("sleepy", replicas: 0));
        var seen = (await harness.GetModelAsync("sleepy")).Metadata.ResourceVersion;
        var api = harness.Admin.CustomObjects;
        V1Patch Patch(string json) => new(json, V1Patch.PatchType.MergePatch);

        var scale = await api.PatchNamespacedCustomObjectScaleAsync<JsonElement>(Patch($$$"""{"metadata":{"resourceVersion":"{{{seen}}}"},"spec":{"replicas":1}}"""),
            V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, "default", V1Alpha1DeepSeekModel.Plural, "sleepy");
        Assert.Equal("Scale", scale.GetProperty("kind").GetString());
        Assert.Equal(1, scale.GetProperty("spec").GetProperty("replicas").GetInt32());
        var model = await harness.GetModelAsync("sleepy");
        Assert.Equal(1, model.Spec.Replicas);
        Assert.Equal(2, model.Metadata.Generation);

        // The version the patch was made from is gone: refused, nothing changed.
        var stale = await Assert.ThrowsAsync<HttpOperationException>(() => api.PatchNamespacedCustomObjectScaleAsync(
            Patch($$$"""{"metadata":{"resourceVersion":"{{{seen}}}"},"spec":{"replicas":3}}"""),
            V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, "default", V1Alpha1DeepSeekModel.Plural, "sleepy"));
        Assert.Equal(HttpStatusCode.Conflict, stale.Response.StatusCode);
        Assert.Equal(1, (await harness.GetModelAsync("sleepy")).Spec.Replicas);

        // Only spec.replicas reaches the model: whatever else the patch of the Scale says.
        await api.PatchNamespacedCustomObjectScaleAsync(Patch("""{"spec":{"replicas":2},"status":{"replicas":9}}"""),
            V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, "default", V1Alpha1DeepSeekModel.Plural, "sleepy");
        model = await harness.GetModelAsync("sleepy");
        Assert.Equal(2, model.Spec.Replicas);
        Assert.Null(model.Status?.Replicas);
    }

    [Fact]
    public async Task A_secrets_string_data_is_stored_base64_encoded_in_data_and_a_watch_by_name_sees_only_that_secret()
    {
        await using var harness = await OperatorHarness.StartAsync();
        var api = harness.Admin.CoreV1;
        using var watch = new CancellationTokenSource(TestTime.Budget(TimeSpan.FromSeconds(30)));
        var events = new List<(WatchEventType Type, string Name)>();
        var watching = Task.Run(async () =>
        {
#pragma warning disable CS0618 // the generic WatchAsync over a list call, as the operator's watcher uses it
            await foreach (var (type, secret) in api.ListNamespacedSecretWithHttpMessagesAsync("default", fieldSelector: "metadata.name=keys", watch: true, cancellationToken: watch.Token)
                               .WatchAsync<V1Secret, V1SecretList>(cancellationToken: watch.Token))
#pragma warning restore CS0618
            {
                lock (events) events.Add((type, secret.Metadata.Name));
                if (type == WatchEventType.Modified) return;
            }
        });

        // The watch is open before anything is written, so that it sees the writes as events.
        await Eventually.HoldsAsync(() => Task.FromResult(harness.Server.Store.OpenWatches == 1), TimeSpan.FromSeconds(20), "the watch of Secret keys to open");
        await api.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "other" }, StringData = new Dictionary<string, string> { ["a"] = "x" } }, "default");
        await api.CreateNamespacedSecretAsync(new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = "keys" },
            Data = new Dictionary<string, byte[]> { ["kept"] = "old"u8.ToArray(), ["replaced"] = "old"u8.ToArray() },
            StringData = new Dictionary<string, string> { ["replaced"] = "new", ["added"] = "text" },
        }, "default");
        var stored = await api.ReadNamespacedSecretAsync("keys", "default");
        Assert.Null(stored.StringData);
        Assert.Equal(["added", "kept", "replaced"], stored.Data.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("new"u8.ToArray(), stored.Data["replaced"]);
        Assert.Equal("text"u8.ToArray(), stored.Data["added"]);

        stored.StringData = new Dictionary<string, string> { ["kept"] = "changed" };
        await api.ReplaceNamespacedSecretAsync(stored, "keys", "default");
        await watching.WaitAsync(watch.Token);
        Assert.Equal("changed"u8.ToArray(), (await api.ReadNamespacedSecretAsync("keys", "default")).Data["kept"]);
        lock (events) Assert.Equal([(WatchEventType.Added, "keys"), (WatchEventType.Modified, "keys")], events);
    }
}
