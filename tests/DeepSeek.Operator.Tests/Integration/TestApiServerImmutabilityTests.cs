using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>
/// The test API server keeps an immutable Secret or ConfigMap as Kubernetes does: its data, type and the
/// mark itself are refused any change (422, by replace or by patch), its metadata may change, and a
/// Secret without the mark may change freely.
/// </summary>
public sealed class TestApiServerImmutabilityTests
{
    private static V1Secret Secret(string name, bool immutable) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { ["a"] = "1" } },
        Type = "Opaque",
        Immutable = immutable ? true : null,
        Data = new Dictionary<string, byte[]> { ["token"] = "first"u8.ToArray() },
    };

    [Fact]
    public async Task An_immutable_secret_keeps_its_data_and_mark_and_takes_metadata_changes()
    {
        await using var harness = await OperatorHarness.StartAsync();
        var api = harness.Admin.CoreV1;
        await api.CreateNamespacedSecretAsync(Secret("locked", immutable: true), "default");

        var stored = await api.ReadNamespacedSecretAsync("locked", "default");
        stored.Metadata.Labels["a"] = "2";
        await api.ReplaceNamespacedSecretAsync(stored, "locked", "default");
        Assert.Equal("2", (await api.ReadNamespacedSecretAsync("locked", "default")).Metadata.Labels["a"]);

        stored = await api.ReadNamespacedSecretAsync("locked", "default");
        stored.Data["token"] = "second"u8.ToArray();
        var replaced = await Assert.ThrowsAsync<HttpOperationException>(() => api.ReplaceNamespacedSecretAsync(stored, "locked", "default"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, replaced.Response.StatusCode);
        Assert.Contains("data: Forbidden: field is immutable when", replaced.Response.Content, StringComparison.Ordinal);

        var patchedData = await Assert.ThrowsAsync<HttpOperationException>(() => api.PatchNamespacedSecretAsync(
            new V1Patch("""{"data":{"token":"c2Vjb25k"}}""", V1Patch.PatchType.MergePatch), "locked", "default"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, patchedData.Response.StatusCode);
        var unmarked = await Assert.ThrowsAsync<HttpOperationException>(() => api.PatchNamespacedSecretAsync(
            new V1Patch("""{"immutable":false}""", V1Patch.PatchType.MergePatch), "locked", "default"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, unmarked.Response.StatusCode);
        Assert.Equal("first"u8.ToArray(), (await api.ReadNamespacedSecretAsync("locked", "default")).Data["token"]);

        // Deleting is how an immutable Secret is replaced.
        await api.DeleteNamespacedSecretAsync("locked", "default");
        await api.CreateNamespacedSecretAsync(Secret("locked", immutable: true), "default");
    }

    [Fact]
    public async Task A_secret_without_the_mark_changes_freely()
    {
        await using var harness = await OperatorHarness.StartAsync();
        var api = harness.Admin.CoreV1;
        await api.CreateNamespacedSecretAsync(Secret("open", immutable: false), "default");
        var stored = await api.ReadNamespacedSecretAsync("open", "default");
        stored.Data["token"] = "second"u8.ToArray();
        stored.Immutable = true;
        await api.ReplaceNamespacedSecretAsync(stored, "open", "default");
        var locked = await api.ReadNamespacedSecretAsync("open", "default");
        Assert.Equal("second"u8.ToArray(), locked.Data["token"]);
        Assert.True(locked.Immutable);
    }
}
