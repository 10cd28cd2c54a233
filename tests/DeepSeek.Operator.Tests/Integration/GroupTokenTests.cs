using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Tests.Support;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>
/// The group token of a multi-pod model against the API server: issued once, kept across reconciles,
/// spec changes, scaling, drift correction and operator restarts, refused any change by the API server
/// (immutable), and gone with the model, as is its NetworkPolicy.
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

        // Drift: a label the operator owns is changed on the Secret; it is restored, the value kept.
        secret = await harness.Admin.CoreV1.ReadNamespacedSecretAsync("ep-ep-group-token", "default");
        secret.Metadata.Labels["app.kubernetes.io/component"] = "edited";
        secret.Metadata.Labels["team"] = "ml";
        await harness.Admin.CoreV1.ReplaceNamespacedSecretAsync(secret, "ep-ep-group-token", "default");
        await Eventually.HoldsAsync(async () => (await harness.Admin.CoreV1.ReadNamespacedSecretAsync("ep-ep-group-token", "default")).Metadata.Labels["app.kubernetes.io/component"] == "inference",
            Wait, "the Secret's labels restored");
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

        // A model that stops being a group (one pod per replica) loses both; the operator deletes them.
        await harness.CreateModelAsync(GroupModel());
        await Eventually.HoldsAsync(async () => (await harness.Admin.CoreV1.ListNamespacedSecretAsync("default")).Items.Count == 1, Wait, "the Secret created again");
        await harness.UpdateModelAsync("ep", model => model.Spec.Parallelism.PodsPerReplica = 1);
        await Eventually.HoldsAsync(async () => (await harness.Admin.NetworkingV1.ListNamespacedNetworkPolicyAsync("default")).Items.Count == 0
            && (await harness.Admin.CoreV1.ListNamespacedSecretAsync("default")).Items.Count == 0
            && (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == 1, Wait, "single-pod replicas without group security");
    }
}
