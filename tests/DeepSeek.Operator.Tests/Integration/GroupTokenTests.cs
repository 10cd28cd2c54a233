using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Tests.Support;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>
/// The group token of a multi-pod model against the API server: issued once, kept across reconciles,
/// spec changes, scaling and operator restarts, refused any change by the API server (immutable), and
/// gone with the model (garbage collection), as is its NetworkPolicy. The operator reads it by name and
/// creates it, nothing more (RBAC get and create on Secrets, which the test server enforces): it never
/// lists, watches, updates or deletes a Secret.
/// </summary>
public sealed class GroupTokenTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static V1Alpha1DeepSeekModel GroupModel()
    {
        var model = OperatorHarness.Model("ep", replicas: 2);
        model.Spec.Runtime.GpusPerPod = 1;
        model.Spec.Parallelism = new ParallelismSpec { PodsPerReplica = 3 };
        return model;
    }

    private static async Task<string> TokenAsync(OperatorHarness harness) =>
        System.Text.Encoding.ASCII.GetString((await harness.Admin.CoreV1.ReadNamespacedSecretAsync("ep-ep-group-token", "default")).Data["token"]);

    [Fact]
    public async Task The_token_is_issued_once_and_survives_reconciles_spec_changes_scaling_drift_and_restarts()
    {
        await using var harness = await OperatorHarness.StartAsync();
        var (stopFirst, firstRun) = harness.StartOperator("operator-a");
        await harness.CreateModelAsync(GroupModel());
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedStatefulSetAsync("default")).Items.Count == 2, Wait, "both groups created");

        var secret = await harness.Admin.CoreV1.ReadNamespacedSecretAsync("ep-ep-group-token", "default");
        var token = await TokenAsync(harness);
        Assert.Matches("^[A-Za-z0-9_-]{43}$", token);
        Assert.True(secret.Immutable);
        Assert.Single(harness.Server.Requests, r => r is { Verb: "create", Resource: "secrets" });
        var sets = (await harness.Admin.AppsV1.ListNamespacedStatefulSetAsync("default")).Items;
        Assert.All(sets, s => Assert.Equal("ep-ep-group-token", s.Spec.Template.Spec.Containers[0].Env.Single(e => e.Name == "DEEPSEEK_GROUP_TOKEN").ValueFrom.SecretKeyRef.Name));

        // A spec change that replaces every group, then a scale up: new pod templates, the same token.
        await harness.UpdateModelAsync("ep", model =>
        {
            model.Spec.Engine.MaxRunningRequests = 8;
            model.Spec.Replicas = 3;
        });
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedStatefulSetAsync("default")).Items.Count == 3
            && (await harness.Admin.CoreV1.ReadNamespacedConfigMapAsync("ep-runtime", "default")).Data["DEEPSEEK_MAX_RUNNING_REQUESTS"] == "8", Wait, "the change applied");
        Assert.Equal(token, await TokenAsync(harness));

        // A label changed on the Secret is left as it is: the operator has no right to update Secrets, and the token is what counts.
        secret = await harness.Admin.CoreV1.ReadNamespacedSecretAsync("ep-ep-group-token", "default");
        secret.Metadata.Labels["team"] = "ml";
        await harness.Admin.CoreV1.ReplaceNamespacedSecretAsync(secret, "ep-ep-group-token", "default");
        await harness.UpdateModelAsync("ep", model => model.Spec.Engine.MaxRunningRequests = 9);
        await Eventually.HoldsAsync(async () => (await harness.Admin.CoreV1.ReadNamespacedConfigMapAsync("ep-runtime", "default")).Data["DEEPSEEK_MAX_RUNNING_REQUESTS"] == "9", Wait, "the change applied");
        var restored = await harness.Admin.CoreV1.ReadNamespacedSecretAsync("ep-ep-group-token", "default");
        Assert.Equal("ml", restored.Metadata.Labels["team"]);
        Assert.Equal(token, await TokenAsync(harness));

        // Nobody may change the value under running ranks: the API server refuses it.
        restored.Data["token"] = "guessable"u8.ToArray();
        var refused = await Assert.ThrowsAsync<HttpOperationException>(() => harness.Admin.CoreV1.ReplaceNamespacedSecretAsync(restored, "ep-ep-group-token", "default"));
        Assert.Equal(422, (int)refused.Response.StatusCode);

        // A new operator process (empty caches) finds the Secret and leaves it alone.
        await stopFirst.CancelAsync();
        await firstRun.WaitAsync(Wait);
        harness.StartOperator("operator-b");
        await harness.UpdateModelAsync("ep", model => model.Spec.Engine.MaxRunningRequests = 16);
        await Eventually.HoldsAsync(async () => (await harness.Admin.CoreV1.ReadNamespacedConfigMapAsync("ep-runtime", "default")).Data["DEEPSEEK_MAX_RUNNING_REQUESTS"] == "16", Wait, "the new operator reconciled");
        Assert.Equal(token, await TokenAsync(harness));
        Assert.DoesNotContain(harness.Server.Requests, r => r.User == "operator-b" && r.Resource == "secrets" && r.Verb is "create" or "update" or "delete");
        AssertOnlyGetAndCreateOnSecrets(harness);
    }

    /// <summary>Every request of an operator (not the test's admin) on Secrets is a get by name or a create, and none was refused.</summary>
    private static void AssertOnlyGetAndCreateOnSecrets(OperatorHarness harness)
    {
        var secrets = harness.Server.Requests.Where(r => r.User != "admin" && r.Group.Length == 0 && r.Resource == "secrets").ToList();
        Assert.NotEmpty(secrets);
        Assert.All(secrets, r =>
        {
            Assert.True(r.Verb is "get" or "create", $"the operator sent {r.Verb} on secrets");
            if (r.Verb == "get") Assert.NotNull(r.Name);
            Assert.NotEqual(403, r.Status);
        });
    }

    [Fact]
    public async Task A_deleted_token_is_created_again_on_the_next_reconcile_and_a_malformed_one_is_reported_not_overwritten()
    {
        await using var harness = await OperatorHarness.StartAsync();
        // Before the model: a Secret under the token's name that the operator did not create, without a token.
        await harness.Admin.CoreV1.CreateNamespacedSecretAsync(new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = "ep-ep-group-token", NamespaceProperty = "default" },
            Data = new Dictionary<string, byte[]> { ["other"] = "x"u8.ToArray() },
        }, "default");
        harness.StartOperator("operator-a");
        await harness.CreateModelAsync(GroupModel());
        await Eventually.HoldsAsync(async () => (await harness.GetModelAsync("ep")).Status?.Conditions?.Any(c => c is { Type: "Degraded", Status: "True", Reason: "GroupTokenInvalid" }) == true,
            Wait, "the unusable Secret reported");
        var degraded = (await harness.GetModelAsync("ep")).Status!.Conditions!.Single(c => c.Type == "Degraded");
        Assert.Contains("ep-ep-group-token", degraded.Message);
        var squatter = await harness.Admin.CoreV1.ReadNamespacedSecretAsync("ep-ep-group-token", "default");
        Assert.Equal("x"u8.ToArray(), squatter.Data["other"]);
        Assert.Null(squatter.Metadata.OwnerReferences);

        // Deleted, it is created on the next reconcile (a GET by name, no watch), owned by the model, and Degraded clears.
        await harness.Admin.CoreV1.DeleteNamespacedSecretAsync("ep-ep-group-token", "default");
        await harness.UpdateModelAsync("ep", model => model.Spec.Engine.MaxRunningRequests = 8);
        await Eventually.HoldsAsync(async () => (await harness.GetModelAsync("ep")).Status?.Conditions?.Any(c => c is { Type: "Degraded", Reason: "GroupTokenInvalid" }) == false,
            Wait, "Degraded cleared");
        var model = await harness.GetModelAsync("ep");
        var issued = await harness.Admin.CoreV1.ReadNamespacedSecretAsync("ep-ep-group-token", "default");
        Assert.Equal(model.Metadata.Uid, issued.Metadata.OwnerReferences.Single().Uid);
        var first = await TokenAsync(harness);

        // Deleted while the model runs (how a token is rotated): a new one on the next reconcile.
        await harness.Admin.CoreV1.DeleteNamespacedSecretAsync("ep-ep-group-token", "default");
        await harness.UpdateModelAsync("ep", model => model.Spec.Engine.MaxRunningRequests = 9);
        await Eventually.HoldsAsync(async () => (await harness.Admin.CoreV1.ListNamespacedSecretAsync("default")).Items.Count == 1, Wait, "the Secret created again");
        Assert.NotEqual(first, await TokenAsync(harness));
        AssertOnlyGetAndCreateOnSecrets(harness);
    }

    [Fact]
    public async Task The_token_and_the_network_policy_go_with_the_model_and_with_its_groups()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator("operator-a");
        await harness.CreateModelAsync(GroupModel());
        await Eventually.HoldsAsync(async () => (await harness.Admin.NetworkingV1.ListNamespacedNetworkPolicyAsync("default")).Items.Count == 1
            && (await harness.Admin.CoreV1.ListNamespacedSecretAsync("default")).Items.Count == 1, Wait, "the Secret and the NetworkPolicy created");
        var policy = await harness.Admin.NetworkingV1.ReadNamespacedNetworkPolicyAsync("ep-experts", "default");
        var model = await harness.GetModelAsync("ep");
        Assert.Equal(model.Metadata.Uid, policy.Metadata.OwnerReferences.Single().Uid);
        Assert.Equal(["Ingress"], policy.Spec.PolicyTypes);

        // Deleting the model deletes both through their owner references.
        await harness.Admin.CustomObjects.DeleteNamespacedCustomObjectAsync(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, "default", V1Alpha1DeepSeekModel.Plural, "ep");
        await Eventually.HoldsAsync(async () => (await harness.Admin.NetworkingV1.ListNamespacedNetworkPolicyAsync("default")).Items.Count == 0
            && (await harness.Admin.CoreV1.ListNamespacedSecretAsync("default")).Items.Count == 0
            && (await harness.Admin.AppsV1.ListNamespacedStatefulSetAsync("default")).Items.Count == 0, Wait, "the model's children collected");

        // A model that stops being a group (one pod per replica) loses its NetworkPolicy; the token Secret, which
        // the operator may not delete, stays (unused) until the model goes.
        await harness.CreateModelAsync(GroupModel());
        await Eventually.HoldsAsync(async () => (await harness.Admin.CoreV1.ListNamespacedSecretAsync("default")).Items.Count == 1, Wait, "the Secret created again");
        await harness.UpdateModelAsync("ep", model => model.Spec.Parallelism.PodsPerReplica = 1);
        await Eventually.HoldsAsync(async () => (await harness.Admin.NetworkingV1.ListNamespacedNetworkPolicyAsync("default")).Items.Count == 0
            && (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == 1, Wait, "single-pod replicas without a NetworkPolicy");
        Assert.Single((await harness.Admin.CoreV1.ListNamespacedSecretAsync("default")).Items);
        await harness.Admin.CustomObjects.DeleteNamespacedCustomObjectAsync(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, "default", V1Alpha1DeepSeekModel.Plural, "ep");
        await Eventually.HoldsAsync(async () => (await harness.Admin.CoreV1.ListNamespacedSecretAsync("default")).Items.Count == 0, Wait, "the Secret collected with the model");
        AssertOnlyGetAndCreateOnSecrets(harness);
    }
}
