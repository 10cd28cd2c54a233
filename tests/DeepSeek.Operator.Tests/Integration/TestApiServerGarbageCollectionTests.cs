using k8s;
using k8s.Autorest;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>The test API server's owner-reference garbage collection, as Kubernetes' collector behaves.</summary>
public sealed class TestApiServerGarbageCollectionTests
{
    private static V1ConfigMap ConfigMap(string name, V1ConfigMap? owner = null) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name,
            OwnerReferences = owner is null ? null :
            [
                new V1OwnerReference { ApiVersion = "v1", Kind = "ConfigMap", Name = owner.Metadata.Name, Uid = owner.Metadata.Uid, Controller = true },
            ],
        },
    };

    [Fact]
    public async Task Deleting_an_owner_deletes_its_dependents_and_a_dependent_created_afterwards_is_collected_too()
    {
        await using var harness = await OperatorHarness.StartAsync();
        var api = harness.Admin.CoreV1;
        var owner = await api.CreateNamespacedConfigMapAsync(ConfigMap("owner"), "default");
        await api.CreateNamespacedConfigMapAsync(ConfigMap("child", owner), "default");

        await api.DeleteNamespacedConfigMapAsync("owner", "default");
        Assert.Empty((await api.ListNamespacedConfigMapAsync("default")).Items);

        // A controller that read the owner before it was deleted may still create a child for it.
        await api.CreateNamespacedConfigMapAsync(ConfigMap("late-child", owner), "default");
        var error = await Assert.ThrowsAsync<HttpOperationException>(() => api.ReadNamespacedConfigMapAsync("late-child", "default"));
        Assert.Equal(System.Net.HttpStatusCode.NotFound, error.Response.StatusCode);
    }
}
