using DeepSeek.Operator.Desired;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Desired;

/// <summary>
/// A model whose replicas are groups of pods gets a group token Secret that every rank reads, and a
/// NetworkPolicy that keeps the expert port to the model's own pods; a single-pod model gets neither.
/// </summary>
public sealed class GroupSecurityTests
{
    private static DesiredState Build() => DesiredStateBuilder.Build(Models.MultiPod(), new OperatorDefaults { RuntimeImage = "r" });

    [Fact]
    public void The_token_secret_is_desired_immutable_owned_by_the_model_and_without_a_value()
    {
        var state = Build();
        var secret = state.GroupToken!;
        Assert.Empty(state.OfType<V1Secret>());

        Assert.Equal("v3-ep-group-token", secret.Metadata.Name);
        Assert.Equal("serving", secret.Metadata.NamespaceProperty);
        Assert.Equal("Opaque", secret.Type);
        Assert.True(secret.Immutable);
        // The value is issued once, when the reconciler creates the Secret; a desired value would be a new one every time.
        Assert.Null(secret.Data);
        Assert.Null(secret.StringData);
        var owner = Assert.Single(secret.Metadata.OwnerReferences);
        Assert.Equal((Models.Uid, "DeepSeekModel", true), (owner.Uid, owner.Kind, owner.Controller!.Value));
        Assert.Equal("deepseek-operator", secret.Metadata.Labels[ModelLabels.ManagedBy]);
    }

    [Fact]
    public void Every_rank_reads_the_token_from_the_secret_by_reference_and_declares_the_expert_port()
    {
        var sets = Build().OfType<V1StatefulSet>().ToList();
        Assert.Equal(2, sets.Count);
        foreach (var container in sets.Select(s => s.Spec.Template.Spec.Containers.Single()))
        {
            var token = container.Env.Single(e => e.Name == "DEEPSEEK_GROUP_TOKEN");
            Assert.Null(token.Value);
            Assert.Equal("v3-ep-group-token", token.ValueFrom.SecretKeyRef.Name);
            Assert.Equal("token", token.ValueFrom.SecretKeyRef.Key);
            Assert.Null(token.ValueFrom.SecretKeyRef.Optional);
            Assert.Equal(
                [("http", 8000), ("grpc", 50051), ("experts", 50052)],
                container.Ports.Select(p => (p.Name, p.ContainerPort)));
        }
        // The token never lands in the settings ConfigMap.
        Assert.DoesNotContain(Build().OfType<V1ConfigMap>().Single().Data, d => d.Key.Contains("GROUP_TOKEN", StringComparison.Ordinal) || d.Value.Contains("ep-group-token", StringComparison.Ordinal));
    }

    [Fact]
    public void The_network_policy_admits_the_models_own_pods_on_any_port_and_everyone_on_http_and_grpc_only()
    {
        var policy = Build().OfType<V1NetworkPolicy>().Single();
        var selector = new Dictionary<string, string> { ["app.kubernetes.io/name"] = "deepseek-runtime", ["app.kubernetes.io/instance"] = "v3" };

        Assert.Equal("v3-experts", policy.Metadata.Name);
        Assert.Equal(Models.Uid, policy.Metadata.OwnerReferences.Single().Uid);
        Assert.Equal(selector, policy.Spec.PodSelector.MatchLabels);
        Assert.Null(policy.Spec.PodSelector.MatchExpressions);
        Assert.Equal(["Ingress"], policy.Spec.PolicyTypes);
        Assert.Null(policy.Spec.Egress);
        Assert.Equal(2, policy.Spec.Ingress.Count);

        var peers = policy.Spec.Ingress[0];
        Assert.Null(peers.Ports);
        var from = Assert.Single(peers.FromProperty);
        Assert.Equal(selector, from.PodSelector.MatchLabels);
        Assert.Null(from.NamespaceSelector);
        Assert.Null(from.IpBlock);

        var clients = policy.Spec.Ingress[1];
        Assert.Null(clients.FromProperty);
        Assert.Equal([("8000", "TCP"), ("50051", "TCP")], clients.Ports.Select(p => (p.Port.Value, p.Protocol)));
        Assert.DoesNotContain(clients.Ports, p => p.Port.Value == "50052");
    }

    [Fact]
    public void The_policy_selects_every_pod_of_every_group_and_no_other_models_pods()
    {
        var state = Build();
        var policy = state.OfType<V1NetworkPolicy>().Single();
        foreach (var set in state.OfType<V1StatefulSet>())
            Assert.All(policy.Spec.PodSelector.MatchLabels, l => Assert.Equal(l.Value, set.Spec.Template.Metadata.Labels[l.Key]));
        var other = DesiredStateBuilder.Build(Models.SinglePod(), new OperatorDefaults { RuntimeImage = "r" }).OfType<V1Deployment>().Single();
        Assert.Contains(policy.Spec.PodSelector.MatchLabels, l => other.Spec.Template.Metadata.Labels[l.Key] != l.Value);
    }

    [Fact]
    public void A_single_pod_model_has_no_group_token_no_policy_and_no_expert_port()
    {
        var state = DesiredStateBuilder.Build(Models.SinglePod(), new OperatorDefaults { RuntimeImage = "r" });
        Assert.Null(state.GroupToken);
        Assert.Empty(state.OfType<V1NetworkPolicy>());
        var container = state.OfType<V1Deployment>().Single().Spec.Template.Spec.Containers.Single();
        Assert.DoesNotContain(container.Env, e => e.Name == "DEEPSEEK_GROUP_TOKEN");
        Assert.DoesNotContain(container.Ports, p => p.ContainerPort == 50052);
    }

    [Fact]
    public void Issued_tokens_are_32_random_bytes_in_base64url_and_differ_every_time()
    {
        var tokens = Enumerable.Range(0, 64).Select(_ =>
        {
            var secret = new V1Secret { Metadata = new V1ObjectMeta { Name = "s" } };
            GroupSecurity.IssueToken(secret);
            return System.Text.Encoding.ASCII.GetString(Assert.Single(secret.Data).Value);
        }).ToList();
        Assert.Equal(tokens.Count, tokens.Distinct(StringComparer.Ordinal).Count());
        Assert.All(tokens, t =>
        {
            Assert.Equal(43, t.Length);
            Assert.Matches("^[A-Za-z0-9_-]{43}$", t);
            Assert.Equal(32, Convert.FromBase64String(t.Replace('-', '+').Replace('_', '/') + "=").Length);
        });
    }

    [Fact]
    public void Equal_models_build_equal_secrets_and_policies()
    {
        Assert.Equal(KubernetesJson.Serialize(Build().GroupToken), KubernetesJson.Serialize(Build().GroupToken));
        Assert.Equal(KubernetesJson.Serialize(Build().OfType<V1NetworkPolicy>().Single()), KubernetesJson.Serialize(Build().OfType<V1NetworkPolicy>().Single()));
    }

    [Fact]
    public void A_stored_token_secret_is_usable_only_if_the_model_owns_it_and_it_holds_an_immutable_token()
    {
        V1Secret Stored(string? ownerUid, bool immutable = true, bool withToken = true)
        {
            var secret = KubernetesJson.Deserialize<V1Secret>(KubernetesJson.Serialize(Build().GroupToken));
            if (withToken) GroupSecurity.IssueToken(secret);
            secret.Immutable = immutable;
            if (ownerUid is null) secret.Metadata.OwnerReferences = null;
            else secret.Metadata.OwnerReferences[0].Uid = ownerUid;
            return secret;
        }

        Assert.Null(GroupSecurity.Defect(Stored(Models.Uid), Models.Uid));
        // Someone else's Secret under the name (a user's, or the model's previous incarnation's before garbage collection).
        Assert.Contains("not created by the operator", GroupSecurity.Defect(Stored(null), Models.Uid));
        Assert.Contains("belongs to another object", GroupSecurity.Defect(Stored("uid-old"), Models.Uid));
        Assert.Contains("no 'token' value", GroupSecurity.Defect(Stored(Models.Uid, withToken: false), Models.Uid));
        Assert.Contains("not immutable", GroupSecurity.Defect(Stored(Models.Uid, immutable: false), Models.Uid));
    }
}
