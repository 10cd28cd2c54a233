using System.Text.Json.Nodes;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Cluster;
using DeepSeek.Operator.Controller;
using DeepSeek.Operator.Desired;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;

namespace DeepSeek.Operator.Tests.Controller;

/// <summary>
/// A model deleted and created again under its name before the caches showed its first children: the
/// new model's children are created at once, not held back as "created moments ago" (they were another
/// model's).
/// </summary>
public sealed class RecreatedModelTests
{
    internal static DeepSeekModelDocument Document(string uid) => new()
    {
        Metadata = new V1ObjectMeta { Name = "ep", NamespaceProperty = "default", Uid = uid, Generation = 1, ResourceVersion = "1" },
        Spec = JsonNode.Parse("""{"model":{"source":{"pvc":{"claimName":"weights"}}},"parallelism":{"podsPerReplica":2},"replicas":1}"""),
    };

    [Fact]
    public async Task The_children_of_a_model_recreated_under_the_same_name_are_created_without_waiting()
    {
        var cluster = new FakeModelCluster { Model = Document("uid-first") };
        var reconciler = new ModelReconciler(cluster, new OperatorDefaults { RuntimeImage = "r" }, ClusterFeatures.Any, TimeProvider.System, NullLogger<ModelReconciler>.Instance);

        Assert.Equal(ReconcileResult.Done, await reconciler.ReconcileAsync("default/ep", CancellationToken.None));
        var first = cluster.Applied.Where(a => a.Kind == ChildActionKind.Create).Select(a => ChildPlan.Key(a.Object)).ToList();
        Assert.Contains("StatefulSet/ep-g0", first);
        Assert.Equal("uid-first", Assert.Single(cluster.CreatedSecrets).Metadata.OwnerReferences.Single().Uid);

        // The same read again (the cache has not caught up): nothing is created twice; the Secret is read by name.
        cluster.Applied.Clear();
        await reconciler.ReconcileAsync("default/ep", CancellationToken.None);
        Assert.DoesNotContain(cluster.Applied, a => a.Kind == ChildActionKind.Create);
        Assert.Single(cluster.CreatedSecrets);

        // Deleted and created again: a new uid, and every child is created for it.
        cluster.Model = Document("uid-second");
        var result = await reconciler.ReconcileAsync("default/ep", CancellationToken.None);
        var second = cluster.Applied.Where(a => a.Kind == ChildActionKind.Create).ToList();
        Assert.Equal(first, second.Select(a => ChildPlan.Key(a.Object)));
        Assert.All(second, a => Assert.Equal("uid-second", a.Object.Metadata.OwnerReferences.Single().Uid));
        // The first model's token Secret is not yet collected: reported, left alone, looked at again later.
        Assert.Single(cluster.CreatedSecrets);
        Assert.Equal(ModelReconciler.GroupTokenRecheck, result.RequeueAfter);

        // Garbage collection removes it: the next look creates the new model's own.
        cluster.Secrets.Clear();
        Assert.Equal(ReconcileResult.Done, await reconciler.ReconcileAsync("default/ep", CancellationToken.None));
        var secret = cluster.CreatedSecrets[^1];
        Assert.Equal("uid-second", secret.Metadata.OwnerReferences.Single().Uid);
        Assert.NotNull(secret.Data[GroupSecurity.TokenKey]);
    }
}
