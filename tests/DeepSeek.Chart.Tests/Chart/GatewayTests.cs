using DeepSeek.Chart.Tests.Infrastructure;
using DeepSeek.Gateway.Cluster;
using DeepSeek.Gateway.Configuration;
using DeepSeek.Operator.Security;
using YamlDotNet.RepresentationModel;

namespace DeepSeek.Chart.Tests.Chart;

/// <summary>
/// The gateway the chart installs by default: its Deployment, Service, configuration (read by the gateway's own
/// reader) and RBAC, which grants exactly <see cref="GatewayPermissions.Rules"/>, key Secrets by name only.
/// </summary>
public sealed class GatewayTests
{
    private const string ConfigPath = "/etc/deepseek-gateway/gateway.yaml";

    [Theory]
    [MemberData(nameof(ValuesMode.All), MemberType = typeof(ValuesMode))]
    public void The_gateway_is_installed_by_default_hardened_with_probes_on_its_port_and_a_service_in_front(string mode)
    {
        var gateway = Manifests.Render(ValuesMode.Files(mode)).Of("gateway");
        var deployment = gateway.Single("Deployment");
        var container = Container(gateway);
        var port = Manifests.Sequence(container, "ports").Single();

        Assert.Equal(["--config", ConfigPath], Manifests.Strings(container, "args"));
        Assert.Equal("http", Manifests.Scalar(port, "name"));
        Assert.Equal("/health", Manifests.Scalar(container, "livenessProbe", "httpGet", "path"));
        Assert.Equal("/ready", Manifests.Scalar(container, "readinessProbe", "httpGet", "path"));
        Assert.Equal("http", Manifests.Scalar(container, "readinessProbe", "httpGet", "port"));
        Assert.Equal("true", deployment.ScalarAt("spec", "template", "spec", "securityContext", "runAsNonRoot"));
        Assert.Equal("true", Manifests.Scalar(container, "securityContext", "readOnlyRootFilesystem"));
        Assert.Equal("false", Manifests.Scalar(container, "securityContext", "allowPrivilegeEscalation"));
        Assert.Equal(["ALL"], Manifests.Strings(container, "securityContext", "capabilities", "drop"));
        Assert.NotNull(Manifests.Scalar(container, "resources", "limits", "memory"));
        Assert.NotNull(deployment.ScalarAt("spec", "template", "metadata", "annotations", "checksum/config"));

        var service = gateway.Single("Service");
        Assert.Equal("http", Manifests.Scalar(Manifests.Sequence(service.Root, "spec", "ports").Single(), "targetPort"));
        Assert.Equal(Mapping(deployment.At("spec", "selector", "matchLabels")), Mapping(service.At("spec", "selector")));
        Assert.Equal(Mapping(deployment.At("spec", "selector", "matchLabels")),
            Mapping(deployment.At("spec", "template", "metadata", "labels")).Where(l => Mapping(deployment.At("spec", "selector", "matchLabels")).ContainsKey(l.Key)).ToDictionary());
        // The operator's pods are not selected: the two components' selectors differ.
        Assert.NotEqual(Mapping(deployment.At("spec", "selector", "matchLabels")),
            Mapping(Manifests.Render(ValuesMode.Files(mode)).Of("operator").Single("Deployment").At("spec", "selector", "matchLabels")));

        var config = Config(gateway);
        Assert.Equal(int.Parse(Manifests.Scalar(port, "containerPort")!, System.Globalization.CultureInfo.InvariantCulture), config.Listen.Port);
        Assert.Equal("0.0.0.0", config.Listen.Host);
        Assert.Equal("/dev/stdout", config.Audit?.Path);
        Assert.Equal(ConfigPath, Manifests.Scalar(Manifests.Sequence(container, "volumeMounts").Single(m => Manifests.Scalar(m, "name") == "config"), "mountPath") + "/gateway.yaml");
    }

    [Fact]
    public void The_image_defaults_to_the_charts_app_version()
    {
        Assert.Equal("ghcr.io/deepseek-operator/deepseek-gateway:0.1.0", Manifests.Scalar(Container(Manifests.Render().Of("gateway")), "image"));
        Assert.Equal("localhost/deepseek-gateway:dev", Manifests.Scalar(Container(Manifests.Render(
            sets: ["gateway.image.repository=localhost/deepseek-gateway", "gateway.image.tag=dev"]).Of("gateway")), "image"));
    }

    [Fact]
    public void The_rendered_configuration_publishes_the_operators_namespaces_with_the_values_settings()
    {
        var everywhere = Config(Manifests.Render().Of("gateway")).Cluster!;
        Assert.Empty(everywhere.Namespaces);
        Assert.Empty(everywhere.KeySecrets);
        Assert.True(everywhere.ScaleFromZero);
        Assert.Equal((120.0, "least-load", 60.0), (everywhere.Models.HoldSeconds, everywhere.Models.Routing, everywhere.Models.TimeoutSeconds));
        Assert.Null(everywhere.Models.Cache);

        Assert.Equal(["team-a", "team-b"], Config(Manifests.Render(ValuesMode.Files(ValuesMode.Namespaced)).Of("gateway")).Cluster!.Namespaces);

        var set = Config(Manifests.Render(ValuesMode.Files(ValuesMode.Namespaced), [
            "gateway.namespaces={team-b}", "gateway.keySecrets={gateway-keys,more-keys}", "gateway.scaleFromZero=false",
            "gateway.models.routing=prefix", "gateway.models.holdSeconds=600", "gateway.models.cache.ttlSeconds=30", "gateway.models.cache.maxEntries=500",
        ]).Of("gateway")).Cluster!;
        Assert.Equal(["team-b"], set.Namespaces);
        Assert.Equal([$"{Helm.ReleaseNamespace}/gateway-keys", $"{Helm.ReleaseNamespace}/more-keys"], set.KeySecrets.Select(s => s.ToString()));
        Assert.False(set.ScaleFromZero);
        Assert.Equal((600.0, "prefix", 30.0, 500), (set.Models.HoldSeconds, set.Models.Routing, set.Models.Cache!.TtlSeconds, set.Models.Cache.MaxEntries));
    }

    [Fact]
    public void Turned_off_nothing_of_the_gateway_is_rendered()
    {
        Assert.Empty(Manifests.Render(sets: ["gateway.enabled=false", "gateway.keySecrets={gateway-keys}"]).Of("gateway"));
        Assert.DoesNotContain(Manifests.Render(sets: ["rbac.create=false"]).Of("gateway"), m => m.Kind.Contains("Role", StringComparison.Ordinal));
    }

    [Fact]
    public void Rights_are_exactly_the_gateways_permission_list_with_key_secrets_readable_by_name_only()
    {
        var manifests = Manifests.Render(sets: ["gateway.keySecrets={gateway-keys,more-keys}"]).Of("gateway");
        var bound = BoundRules(manifests);

        Assert.Equal(Canonical(GatewayPermissions.Rules), Canonical(bound.Select(b => b.Rule).Distinct()));
        // Models, pods and scale everywhere (cluster-wide); Secrets only in the release namespace, only these two.
        Assert.All(bound.Where(b => b.Rule.Resource != "secrets"), b => Assert.Null(b.Namespace));
        var secrets = Assert.Single(bound, b => b.Rule.Resource == "secrets");
        Assert.Equal(Helm.ReleaseNamespace, secrets.Namespace);
        Assert.Equal(["gateway-keys", "more-keys"], secrets.Names);
        Assert.All(bound.Where(b => b.Rule.Resource != "secrets"), b => Assert.Null(b.Names));

        // Without key Secrets the gateway is open and reads no Secret at all.
        Assert.DoesNotContain(BoundRules(Manifests.Render().Of("gateway")), b => b.Rule.Resource == "secrets");
    }

    [Fact]
    public void In_namespaced_mode_the_gateway_reads_only_the_watched_namespaces()
    {
        var bound = BoundRules(Manifests.Render(ValuesMode.Files(ValuesMode.Namespaced)).Of("gateway"));

        foreach (var watched in new[] { "team-a", "team-b" })
        {
            Assert.Equal(
                Canonical(GatewayPermissions.Rules.Where(r => r.Resource != "secrets")),
                Canonical(bound.Where(b => b.Namespace == watched).Select(b => b.Rule)));
        }
        Assert.Equal(["team-a", "team-b"], bound.Select(b => b.Namespace ?? "(cluster)").Distinct().Order(StringComparer.Ordinal));
    }

    private static GatewayConfig Config(IReadOnlyList<Manifest> gateway) =>
        ConfigFile.Parse(gateway.Single("ConfigMap").ScalarAt("data", "gateway.yaml")!, "the chart's gateway.yaml");

    private static YamlNode Container(IReadOnlyList<Manifest> gateway) =>
        Manifests.Sequence(gateway.Single("Deployment").Root, "spec", "template", "spec", "containers").Single();

    /// <summary>The rules bound to the gateway's service account (the one its Deployment runs as): namespace (null: cluster-wide), rule, resourceNames.</summary>
    private static List<(string? Namespace, PermissionRule Rule, IReadOnlyList<string>? Names)> BoundRules(IReadOnlyList<Manifest> gateway)
    {
        var serviceAccount = gateway.Single("Deployment").ScalarAt("spec", "template", "spec", "serviceAccountName");
        Assert.Contains(gateway, m => m.Kind == "ServiceAccount" && m.Name == serviceAccount && m.Namespace == Helm.ReleaseNamespace);
        var roles = gateway.Where(m => m.Kind is "ClusterRole" or "Role").ToList();
        var result = new List<(string?, PermissionRule, IReadOnlyList<string>?)>();
        foreach (var binding in gateway.Where(m => m.Kind is "ClusterRoleBinding" or "RoleBinding"))
        {
            var subject = Assert.Single(Manifests.Sequence(binding.Root, "subjects"));
            Assert.Equal("ServiceAccount", Manifests.Scalar(subject, "kind"));
            Assert.Equal(serviceAccount, Manifests.Scalar(subject, "name"));
            Assert.Equal(Helm.ReleaseNamespace, Manifests.Scalar(subject, "namespace"));
            var kind = binding.ScalarAt("roleRef", "kind");
            var role = Assert.Single(roles, r => r.Kind == kind && r.Name == binding.ScalarAt("roleRef", "name") && (kind == "ClusterRole" || r.Namespace == binding.Namespace));
            foreach (var rule in Manifests.Sequence(role.Root, "rules"))
            {
                var groups = Manifests.Strings(rule, "apiGroups");
                var resources = Manifests.Strings(rule, "resources");
                var verbs = Manifests.Strings(rule, "verbs");
                Assert.True(groups.Count == 1 && resources.Count == 1, $"{role}: one group and one resource per rule");
                Assert.DoesNotContain("*", groups.Concat(resources).Concat(verbs));
                var names = Manifests.Node(rule, "resourceNames") is null ? null : Manifests.Strings(rule, "resourceNames");
                result.Add((binding.Kind == "RoleBinding" ? binding.Namespace : null, new PermissionRule(groups[0], resources[0], verbs), names));
            }
        }
        Assert.Equal(roles.Count, gateway.Count(m => m.Kind is "ClusterRoleBinding" or "RoleBinding"));
        return result;
    }

    private static string[] Canonical(IEnumerable<PermissionRule> rules) =>
        [.. rules
            .Select(r => $"{(r.ApiGroup.Length == 0 ? "core" : r.ApiGroup)} {r.Resource}: {string.Join(",", r.Verbs.Order(StringComparer.Ordinal))}")
            .Distinct()
            .Order(StringComparer.Ordinal)];

    private static Dictionary<string, string> Mapping(YamlNode? node) =>
        ((YamlMappingNode)node!).Children.ToDictionary(c => ((YamlScalarNode)c.Key).Value!, c => ((YamlScalarNode)c.Value).Value!);
}
