using DeepSeek.Chart.Tests.Infrastructure;
using DeepSeek.Operator.Security;
using YamlDotNet.RepresentationModel;

namespace DeepSeek.Chart.Tests.Chart;

/// <summary>
/// The chart's RBAC for the operator grants exactly <see cref="OperatorPermissions.Rules"/>: the list of calls the operator
/// makes, which the operator's test API server enforces. A new call without a chart rule fails here.
/// </summary>
public sealed class RbacTests
{

    [Theory]
    [MemberData(nameof(ValuesMode.All), MemberType = typeof(ValuesMode))]
    public void Rendered_rights_are_exactly_the_operators_permission_list(string mode)
    {
        var manifests = Manifests.Render(ValuesMode.Files(mode)).Of("operator");
        // In namespace-scoped mode each watched namespace holds the same rules; the union is what counts here.
        var rendered = Canonical(BoundRules(manifests).Select(r => r.Rule)).Distinct().ToArray();

        Assert.Equal(Canonical(OperatorPermissions.Rules), rendered);
    }

    [Theory]
    [MemberData(nameof(ValuesMode.All), MemberType = typeof(ValuesMode))]
    public void Every_rule_names_one_group_and_one_resource_without_wildcards_and_secrets_get_only_get_and_create(string mode)
    {
        foreach (var role in Roles(Manifests.Render(ValuesMode.Files(mode)).Of("operator")))
        {
            foreach (var rule in Manifests.Sequence(role.Root, "rules"))
            {
                var groups = Manifests.Strings(rule, "apiGroups");
                var resources = Manifests.Strings(rule, "resources");
                var verbs = Manifests.Strings(rule, "verbs");
                Assert.True(groups.Count == 1 && resources.Count == 1, $"{role}: one group and one resource per rule, as in OperatorPermissions.Rules");
                Assert.DoesNotContain("*", groups.Concat(resources).Concat(verbs));
                Assert.Null(Manifests.Node(rule, "resourceNames"));
                Assert.Null(Manifests.Node(rule, "nonResourceURLs"));
                // Secrets only for the group token of expert-parallel models: read by name and created once,
                // immutable, owned by the model (garbage collection deletes it). Never list or watch (which would
                // read every Secret in the cluster), update, patch, delete or deletecollection.
                if (resources[0] == "secrets")
                    Assert.Equal(["create", "get"], verbs.Order(StringComparer.Ordinal).ToArray());
            }
        }
    }

    [Fact]
    public void Cluster_mode_uses_a_cluster_role_for_workloads_and_a_namespaced_role_for_the_lease()
    {
        var manifests = Manifests.Render().Of("operator");

        var clusterRole = manifests.Single("ClusterRole");
        Assert.Equal(
            Canonical(OperatorPermissions.Rules.Where(r => !IsLease(r))),
            Canonical(RulesOf(clusterRole)));
        var leaseRole = manifests.Single("Role");
        Assert.Equal(Helm.ReleaseNamespace, leaseRole.Namespace);
        Assert.Equal(Canonical(OperatorPermissions.Rules.Where(IsLease)), Canonical(RulesOf(leaseRole)));
    }

    [Fact]
    public void Namespaced_mode_grants_workload_rights_only_in_the_watched_namespaces()
    {
        var manifests = Manifests.Render(ValuesMode.Files(ValuesMode.Namespaced));

        // Nothing cluster-wide, the gateway's rights included: it publishes the operator's namespaces.
        Assert.DoesNotContain(manifests, m => m.Kind is "ClusterRole" or "ClusterRoleBinding");
        var bound = BoundRules(manifests.Of("operator"));
        foreach (var watched in new[] { "team-a", "team-b" })
        {
            Assert.Equal(
                Canonical(OperatorPermissions.Rules.Where(r => !IsLease(r))),
                Canonical(bound.Where(b => b.Namespace == watched).Select(b => b.Rule)));
        }

        Assert.Equal(
            Canonical(OperatorPermissions.Rules.Where(IsLease)),
            Canonical(bound.Where(b => b.Namespace == Helm.ReleaseNamespace).Select(b => b.Rule)));
        Assert.Equal(
            new[] { Helm.ReleaseNamespace, "team-a", "team-b" },
            bound.Select(b => b.Namespace ?? "(cluster)").Distinct().Order(StringComparer.Ordinal).ToArray());
    }

    [Fact]
    public void Without_leader_election_there_are_no_lease_rights()
    {
        var manifests = Manifests.Render(sets: ["replicaCount=1", "leaderElection.enabled=false"]).Of("operator");

        Assert.Equal(
            Canonical(OperatorPermissions.Rules.Where(r => !IsLease(r))),
            Canonical(BoundRules(manifests).Select(b => b.Rule)));
    }

    [Fact]
    public void Rbac_can_be_left_to_the_cluster_admin()
    {
        var manifests = Manifests.Render(sets: ["rbac.create=false"]);

        Assert.DoesNotContain(manifests, m => m.Kind is "ClusterRole" or "ClusterRoleBinding" or "Role" or "RoleBinding");
    }

    private static bool IsLease(PermissionRule rule) => rule is { ApiGroup: "coordination.k8s.io", Resource: "leases" };

    private static IEnumerable<Manifest> Roles(IReadOnlyList<Manifest> manifests) =>
        manifests.Where(m => m.Kind is "ClusterRole" or "Role");

    /// <summary>Rules of every Role/ClusterRole bound to the operator's service account, with the namespace they apply in (null: cluster-wide).</summary>
    private static List<(string? Namespace, PermissionRule Rule)> BoundRules(IReadOnlyList<Manifest> manifests)
    {
        var roles = Roles(manifests).ToList();
        var serviceAccount = manifests.Single("Deployment").ScalarAt("spec", "template", "spec", "serviceAccountName");
        Assert.Contains(manifests, m => m.Kind == "ServiceAccount" && m.Name == serviceAccount && m.Namespace == Helm.ReleaseNamespace);
        var result = new List<(string? Namespace, PermissionRule Rule)>();
        var bound = new HashSet<Manifest>();
        foreach (var binding in manifests.Where(m => m.Kind is "ClusterRoleBinding" or "RoleBinding"))
        {
            var subjects = Manifests.Sequence(binding.Root, "subjects");
            Assert.Contains(subjects, s =>
                Manifests.Scalar(s, "kind") == "ServiceAccount"
                && Manifests.Scalar(s, "name") == serviceAccount
                && Manifests.Scalar(s, "namespace") == Helm.ReleaseNamespace);
            var kind = binding.ScalarAt("roleRef", "kind");
            var name = binding.ScalarAt("roleRef", "name");
            var role = roles.SingleOrDefault(r => r.Kind == kind && r.Name == name && (kind == "ClusterRole" || r.Namespace == binding.Namespace))
                ?? throw new InvalidOperationException($"{binding} refers to {kind} {name}, which the chart does not render");
            bound.Add(role);
            result.AddRange(RulesOf(role).Select(rule => (binding.Kind == "RoleBinding" ? binding.Namespace : null, rule)));
        }

        // A role nobody binds would be dead weight, and a sign the chart and this test disagree.
        Assert.All(roles, r => Assert.Contains(r, bound));
        return result;
    }

    private static List<PermissionRule> RulesOf(Manifest role) =>
        [.. Manifests.Sequence(role.Root, "rules").Select(rule => new PermissionRule(
            Manifests.Strings(rule, "apiGroups").Single(),
            Manifests.Strings(rule, "resources").Single(),
            Manifests.Strings(rule, "verbs")))];

    /// <summary>Rules as sorted "group resource: verbs" lines: order of rules and verbs does not matter, everything else does.</summary>
    private static string[] Canonical(IEnumerable<PermissionRule> rules) =>
        [.. rules
            .Select(r => $"{(r.ApiGroup.Length == 0 ? "core" : r.ApiGroup)} {r.Resource}: {string.Join(",", r.Verbs.Order(StringComparer.Ordinal))}")
            .Order(StringComparer.Ordinal)];
}
