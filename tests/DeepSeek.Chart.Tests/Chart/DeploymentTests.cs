using DeepSeek.Chart.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace DeepSeek.Chart.Tests.Chart;

/// <summary>The operator Deployment (the gateway's: GatewayTests): command-line contract, leader election, probes, hardening, scheduling.</summary>
public sealed class DeploymentTests
{
    [Theory]
    [InlineData(new string[0], "true")]
    [InlineData(new[] { "replicaCount=1", "leaderElection.enabled=false" }, "false")]
    [InlineData(new[] { "replicaCount=2", "leaderElection.enabled=false" }, "true")]
    [InlineData(new[] { "replicaCount=3" }, "true")]
    public void Leader_election_is_on_by_default_and_whenever_more_than_one_replica(string[] sets, string expected)
    {
        var args = Arguments(Container(Manifests.Render(sets: sets)));

        Assert.Contains($"--leader-elect={expected}", args);
        Assert.Contains($"--leader-election-namespace={Helm.ReleaseNamespace}", args);
        Assert.Contains("--leader-election-id=deepseek-operator-leader", args);
    }

    [Theory]
    [InlineData(new string[0], "16")]
    [InlineData(new[] { "workers=64" }, "64")]
    public void Workers_are_passed_to_the_operator(string[] sets, string expected) =>
        Assert.Contains($"--workers={expected}", Arguments(Container(Manifests.Render(sets: sets))));

    [Fact]
    public void Workers_out_of_range_are_refused_by_the_values_schema()
    {
        var refused = Helm.Template(sets: ["workers=0"]);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("workers", refused.StandardError, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(ValuesMode.All), MemberType = typeof(ValuesMode))]
    public void Containers_run_hardened(string mode)
    {
        var deployment = Manifests.Render(ValuesMode.Files(mode)).Of("operator").Single("Deployment");
        var container = Container([deployment]);

        Assert.Equal("true", deployment.ScalarAt("spec", "template", "spec", "securityContext", "runAsNonRoot"));
        Assert.Equal("RuntimeDefault", deployment.ScalarAt("spec", "template", "spec", "securityContext", "seccompProfile", "type"));
        Assert.Equal("true", Manifests.Scalar(container, "securityContext", "runAsNonRoot"));
        Assert.Equal("true", Manifests.Scalar(container, "securityContext", "readOnlyRootFilesystem"));
        Assert.Equal("false", Manifests.Scalar(container, "securityContext", "allowPrivilegeEscalation"));
        Assert.Equal(["ALL"], Manifests.Strings(container, "securityContext", "capabilities", "drop"));
        Assert.Null(Manifests.Node(container, "securityContext", "capabilities", "add"));
        Assert.Equal("RuntimeDefault", Manifests.Scalar(container, "securityContext", "seccompProfile", "type"));
        Assert.NotNull(Manifests.Scalar(container, "resources", "requests", "memory"));
        Assert.NotNull(Manifests.Scalar(container, "resources", "limits", "memory"));
    }

    [Theory]
    [MemberData(nameof(ValuesMode.All), MemberType = typeof(ValuesMode))]
    public void Probes_and_metrics_use_the_ports_passed_to_the_operator(string mode)
    {
        var manifests = Manifests.Render(ValuesMode.Files(mode)).Of("operator");
        var container = Container(manifests);
        var args = Arguments(container);
        var ports = Manifests.Sequence(container, "ports")
            .ToDictionary(p => Manifests.Scalar(p, "name")!, p => Manifests.Scalar(p, "containerPort")!);

        Assert.Contains($"--health-port={ports["health"]}", args);
        Assert.Contains($"--metrics-port={ports["metrics"]}", args);
        Assert.Contains("--metrics-bind-address=0.0.0.0", args);
        Assert.Equal("/healthz", Manifests.Scalar(container, "livenessProbe", "httpGet", "path"));
        Assert.Equal("health", Manifests.Scalar(container, "livenessProbe", "httpGet", "port"));
        Assert.Equal("/readyz", Manifests.Scalar(container, "readinessProbe", "httpGet", "path"));
        Assert.Equal("health", Manifests.Scalar(container, "readinessProbe", "httpGet", "port"));
        var service = manifests.Single("Service");
        Assert.Equal("metrics", Manifests.Scalar(Manifests.Sequence(service.Root, "spec", "ports").Single(), "targetPort"));
        Assert.Equal(
            Mapping(manifests.Single("Deployment").At("spec", "selector", "matchLabels")),
            Mapping(service.At("spec", "selector")));
    }

    [Fact]
    public void Pod_name_and_namespace_come_from_the_downward_api()
    {
        var env = Manifests.Sequence(Container(Manifests.Render()), "env")
            .ToDictionary(e => Manifests.Scalar(e, "name")!, e => Manifests.Scalar(e, "valueFrom", "fieldRef", "fieldPath"));

        Assert.Equal("metadata.name", env["POD_NAME"]);
        Assert.Equal("metadata.namespace", env["POD_NAMESPACE"]);
    }

    [Fact]
    public void Default_runtime_settings_are_passed_as_operator_options()
    {
        var args = Arguments(Container(Manifests.Render(ValuesMode.Files(ValuesMode.Full))));

        Assert.Equal("run", args[0]);
        Assert.Contains("--runtime-image=registry.example.com/platform/deepseek-runtime:0.1.0-cuda12.8", args);
        Assert.Contains("--cpu-runtime-image=registry.example.com/platform/deepseek-runtime-cpu:0.1.0", args);
        Assert.Contains("--default-node-selector=nvidia.com/gpu.present=true", args);
        Assert.Contains("--default-node-selector=node.kubernetes.io/instance-type=p5.48xlarge", args);
        Assert.Contains("--default-toleration=nvidia.com/gpu:NoSchedule", args);
        Assert.Contains("--default-toleration=dedicated=inference:NoExecute", args);
        Assert.DoesNotContain(args, a => a.StartsWith("--watch-namespace", StringComparison.Ordinal));
    }

    [Fact]
    public void Runtime_image_defaults_to_the_charts_app_version()
    {
        var args = Arguments(Container(Manifests.Render()));

        Assert.Contains("--runtime-image=ghcr.io/deepseek-operator/deepseek-runtime:0.1.0", args);
        Assert.Contains("--cpu-runtime-image=ghcr.io/deepseek-operator/deepseek-runtime:0.1.0-cpu", args);
    }

    [Fact]
    public void Cpu_runtime_image_follows_the_runtime_image_unless_set()
    {
        var derived = Arguments(Container(Manifests.Render(sets: ["runtimeDefaults.image.repository=localhost/deepseek-runtime", "runtimeDefaults.image.tag=dev"])));
        Assert.Contains("--cpu-runtime-image=localhost/deepseek-runtime:dev-cpu", derived);

        var own = Arguments(Container(Manifests.Render(sets: ["runtimeDefaults.cpuImage.repository=registry.example.com/cpu/runtime", "runtimeDefaults.cpuImage.tag=1.0"])));
        Assert.Contains("--cpu-runtime-image=registry.example.com/cpu/runtime:1.0", own);
        Assert.Contains("--runtime-image=ghcr.io/deepseek-operator/deepseek-runtime:0.1.0", own);
    }

    [Fact]
    public void Namespaced_mode_passes_each_watched_namespace()
    {
        var args = Arguments(Container(Manifests.Render(ValuesMode.Files(ValuesMode.Namespaced))));

        Assert.Equal(
            ["--watch-namespace=team-a", "--watch-namespace=team-b"],
            args.Where(a => a.StartsWith("--watch-namespace", StringComparison.Ordinal)).ToArray());
    }

    [Fact]
    public void Scheduling_and_pull_secrets_reach_the_pod()
    {
        var deployment = Manifests.Render(ValuesMode.Files(ValuesMode.Full)).Of("operator").Single("Deployment");
        var pod = deployment.At("spec", "template", "spec")!;

        Assert.Equal("2", deployment.ScalarAt("spec", "replicas"));
        Assert.Equal("registry-credentials", Manifests.Scalar(Manifests.Sequence(pod, "imagePullSecrets").Single(), "name"));
        Assert.Equal("linux", Manifests.Scalar(pod, "nodeSelector", "kubernetes.io/os"));
        Assert.Equal("CriticalAddonsOnly", Manifests.Scalar(Manifests.Sequence(pod, "tolerations").Single(), "key"));
        Assert.NotNull(Manifests.Node(pod, "affinity", "podAntiAffinity"));
        Assert.Equal("system-cluster-critical", Manifests.Scalar(pod, "priorityClassName"));
        Assert.Equal("deepseek-operator", Manifests.Scalar(pod, "serviceAccountName"));
        Assert.Equal("registry.example.com/platform/deepseek-operator:0.1.0", Manifests.Scalar(Container([deployment]), "image"));
    }

    [Fact]
    public void Service_monitor_is_rendered_only_when_enabled()
    {
        Assert.DoesNotContain(Manifests.Render(), m => m.Kind == "ServiceMonitor");

        var monitor = Manifests.Render(ValuesMode.Files(ValuesMode.Full)).Single("ServiceMonitor");
        Assert.Equal("kube-prometheus-stack", monitor.ScalarAt("metadata", "labels", "release"));
        var endpoint = Manifests.Sequence(monitor.Root, "spec", "endpoints").Single();
        Assert.Equal("metrics", Manifests.Scalar(endpoint, "port"));
        Assert.Equal("15s", Manifests.Scalar(endpoint, "interval"));
    }

    private static YamlNode Container(IReadOnlyList<Manifest> manifests) =>
        Manifests.Sequence(manifests.Of("operator").Single("Deployment").Root, "spec", "template", "spec", "containers").Single();

    private static List<string> Arguments(YamlNode container) => [.. Manifests.Strings(container, "args")];

    private static Dictionary<string, string> Mapping(YamlNode? node) =>
        ((YamlMappingNode)node!).Children.ToDictionary(
            c => ((YamlScalarNode)c.Key).Value!, c => ((YamlScalarNode)c.Value).Value!);
}
