using DeepSeek.Chart.Tests.Infrastructure;
using DeepSeek.Contract;
using DeepSeek.Operator.Desired;

namespace DeepSeek.Chart.Tests.Images;

/// <summary>The optional PodMonitor scrapes exactly the runtime pods the operator creates, on their http port.</summary>
public sealed class PodMonitorTests
{
    [Fact]
    public void Is_off_by_default()
    {
        Assert.DoesNotContain(Manifests.Render(), m => m.Kind == "PodMonitor");
    }

    [Fact]
    public void Selects_the_operators_runtime_pods_and_scrapes_their_http_metrics_in_every_namespace()
    {
        var monitor = Manifests.Render(sets: ["runtimePodMonitor.enabled=true", "runtimePodMonitor.labels.release=kube-prometheus-stack"]).Single("PodMonitor");

        Assert.Equal(Helm.ReleaseNamespace, monitor.Namespace);
        Assert.Equal("kube-prometheus-stack", monitor.ScalarAt("metadata", "labels", "release"));
        // The labels the operator puts on every runtime pod it creates (ModelLabels.For).
        var pod = ModelLabels.For("any-model");
        Assert.Equal(pod[ModelLabels.Name], monitor.ScalarAt("spec", "selector", "matchLabels", ModelLabels.Name));
        Assert.Equal(pod[ModelLabels.ManagedBy], monitor.ScalarAt("spec", "selector", "matchLabels", ModelLabels.ManagedBy));
        Assert.Equal("true", monitor.ScalarAt("spec", "namespaceSelector", "any"));

        var endpoint = Manifests.Sequence(monitor.Root, "spec", "podMetricsEndpoints").Single();
        Assert.Equal(RuntimeContract.HttpName, Manifests.Scalar(endpoint, "port"));
        Assert.Equal("/metrics", Manifests.Scalar(endpoint, "path"));
        Assert.Equal("15s", Manifests.Scalar(endpoint, "interval"));
        // The model as namespace/name in deepseekmodel: the label of the operator's per-model series too.
        var relabel = Manifests.Sequence(endpoint, "relabelings").Single(r => Manifests.Scalar(r, "targetLabel") == "deepseekmodel");
        Assert.Equal(["__meta_kubernetes_namespace", "__meta_kubernetes_pod_label_app_kubernetes_io_instance"], Manifests.Strings(relabel, "sourceLabels"));
        Assert.Equal("/", Manifests.Scalar(relabel, "separator"));
    }

    [Fact]
    public void Follows_the_watched_namespaces()
    {
        var monitor = Manifests.Render(sets: ["runtimePodMonitor.enabled=true", "watchNamespaces={team-a,team-b}"]).Single("PodMonitor");

        Assert.Equal(["team-a", "team-b"], Manifests.Strings(monitor.Root, "spec", "namespaceSelector", "matchNames"));
        Assert.Null(monitor.At("spec", "namespaceSelector", "any"));
    }

    [Fact]
    public void Lints_and_rejects_a_bad_interval()
    {
        Helm.Lint(sets: ["runtimePodMonitor.enabled=true"]).EnsureSuccess("helm lint");
        var bad = Helm.Template(sets: ["runtimePodMonitor.enabled=true", "runtimePodMonitor.interval=often"]);

        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("runtimePodMonitor", bad.StandardError, StringComparison.Ordinal);
    }
}
