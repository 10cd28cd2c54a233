using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Tests.Support;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>
/// Changes made to children directly (kubectl scale, kubectl set image, an edit of the settings
/// ConfigMap) are reverted, counted in a metric and reported in an event (issue 18, defect 4).
/// </summary>
public sealed class DriftTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Scaled_reimaged_and_edited_children_are_restored_and_counted()
    {
        await using var harness = await OperatorHarness.StartAsync();
        int metrics = FreePort.Next();
        harness.StartOperator("operator-a", metricsPort: metrics);
        await harness.CreateModelAsync(OperatorHarness.Model("m", replicas: 2));
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == 1
            && (await harness.Admin.CoreV1.ListNamespacedConfigMapAsync("default")).Items.Count == 1, Wait, "children created");

        // kubectl scale deploy m --replicas=5 (through the scale subresource).
        await harness.Admin.AppsV1.ReplaceNamespacedDeploymentScaleAsync(new V1Scale { Metadata = new V1ObjectMeta { Name = "m", NamespaceProperty = "default" }, Spec = new V1ScaleSpec { Replicas = 5 } }, "m", "default");
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ReadNamespacedDeploymentAsync("m", "default")).Spec.Replicas == 2, Wait, "the replica count is restored");

        // kubectl set image deploy/m runtime=evil:1
        var deployment = await harness.Admin.AppsV1.ReadNamespacedDeploymentAsync("m", "default");
        deployment.Spec.Template.Spec.Containers[0].Image = "evil:1";
        await harness.Admin.AppsV1.ReplaceNamespacedDeploymentAsync(deployment, "m", "default");
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ReadNamespacedDeploymentAsync("m", "default")).Spec.Template.Spec.Containers[0].Image == "runtime:test", Wait, "the image is restored");

        // kubectl edit configmap m-runtime
        var settings = await harness.Admin.CoreV1.ReadNamespacedConfigMapAsync("m-runtime", "default");
        var original = settings.Data["DEEPSEEK_MAX_BATCH_TOKENS"];
        settings.Data["DEEPSEEK_MAX_BATCH_TOKENS"] = "1";
        await harness.Admin.CoreV1.ReplaceNamespacedConfigMapAsync(settings, "m-runtime", "default");
        await Eventually.HoldsAsync(async () => (await harness.Admin.CoreV1.ReadNamespacedConfigMapAsync("m-runtime", "default")).Data["DEEPSEEK_MAX_BATCH_TOKENS"] == original, Wait, "the settings are restored");

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        await Eventually.HoldsAsync(async () =>
        {
            var text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{metrics}/metrics"));
            return text.Split('\n').Any(l => l.StartsWith("deepseek_operator_drift_corrections_total{", StringComparison.Ordinal) && l.Contains("kind=\"Deployment\"", StringComparison.Ordinal) && !l.EndsWith(" 1", StringComparison.Ordinal))
                && text.Split('\n').Any(l => l.StartsWith("deepseek_operator_drift_corrections_total{", StringComparison.Ordinal) && l.Contains("kind=\"ConfigMap\"", StringComparison.Ordinal));
        }, Wait, "two Deployment corrections and one ConfigMap correction are counted");
        var events = (await harness.Admin.CoreV1.ListNamespacedEventAsync("default")).Items.Where(e => e.Reason == "DriftCorrected").ToList();
        Assert.NotEmpty(events);
        Assert.Contains(events, e => e.Message.Contains("Deployment m", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Fields_others_add_are_kept_and_cause_no_writes()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator("operator-a");
        await harness.CreateModelAsync(OperatorHarness.Model("m"));
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == 1, Wait, "created");

        // What the Deployment controller and API-server defaulting add is not drift.
        var deployment = await harness.Admin.AppsV1.ReadNamespacedDeploymentAsync("m", "default");
        deployment.Metadata.Annotations["deployment.kubernetes.io/revision"] = "1";
        deployment.Spec.RevisionHistoryLimit = 10;
        deployment.Spec.Template.Spec.Containers[0].TerminationMessagePath = "/dev/termination-log";
        deployment.Spec.Template.Spec.DnsPolicy = "ClusterFirst";
        await harness.Admin.AppsV1.ReplaceNamespacedDeploymentAsync(deployment, "m", "default");
        await harness.MarkDeploymentReadyAsync("m");
        await Eventually.HoldsAsync(async () => (await harness.GetModelAsync("m")).Status?.ReadyReplicas == 1, Wait, "the model sees its ready pod");

        Assert.DoesNotContain(harness.Server.Requests, r => r.User == "operator-a" && r.Verb == "update" && r.Resource == "deployments");
        Assert.Equal("1", (await harness.Admin.AppsV1.ReadNamespacedDeploymentAsync("m", "default")).Metadata.Annotations["deployment.kubernetes.io/revision"]);
    }

    /// <summary>
    /// Issue 28, defect 1: the API server leaves out zero values of non-pointer fields (<c>readOnly: false</c>
    /// on the download's claim and mount) and canonicalises quantities, so a stored child never looks exactly
    /// like the desired one. That is not drift: reconciles of a ready model write nothing, and a real change
    /// (kubectl scale) still is.
    /// </summary>
    [Fact]
    public async Task Reconciles_of_a_ready_model_write_nothing_where_the_server_left_out_zeros_and_rewrote_quantities()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator("operator-a");
        using var measured = harness.Measure("operator-a");
        var model = OperatorHarness.Model("m");
        model.Spec.Model.Source!.Pvc!.Download = new ModelDownload { Repo = "deepseek-ai/DeepSeek-V2-Lite" };
        model.Spec.Runtime.Resources = new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["memory"] = new("1024Mi"), ["cpu"] = new("1000m") } };
        await harness.CreateModelAsync(model);
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ListNamespacedDeploymentAsync("default")).Items.Count == 1, Wait, "the Deployment is created");
        var stored = await harness.Admin.AppsV1.ReadNamespacedDeploymentAsync("m", "default");
        Assert.Null(stored.Spec.Template.Spec.InitContainers[0].VolumeMounts[0].ReadOnlyProperty);
        Assert.False(stored.Spec.Template.Spec.AutomountServiceAccountToken);
        await harness.MarkDeploymentReadyAsync("m");
        await Eventually.HoldsAsync(async () => (await harness.GetModelAsync("m")).Status?.ReadyReplicas == 1, Wait, "the model is ready");

        const string Reconciles = "deepseek_operator_reconciles", Drift = "deepseek_operator_drift_corrections";
        var seen = harness.Server.Requests.Count;
        var before = measured.Total(Reconciles, "result=success");
        for (var i = 1; i <= 3; i++)
        {
            // Touching the model's annotations wakes a reconcile of it; each is waited for, as the operator counts it.
            await harness.UpdateModelAsync("m", m => (m.Metadata.Annotations ??= new Dictionary<string, string>())["test/touch"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            await Eventually.HoldsAsync(() => Task.FromResult(measured.Total(Reconciles, "result=success") >= before + i), Wait, $"reconcile {i} after the model is ready");
        }

        Assert.DoesNotContain(harness.Server.Requests.Skip(seen), r => r.User == "operator-a" && r.Verb == "update" && r.Resource is "deployments" or "statefulsets");
        Assert.DoesNotContain((await harness.Admin.CoreV1.ListNamespacedEventAsync("default")).Items, e => e.Reason == "DriftCorrected");
        Assert.Equal(0, measured.Total(Drift));

        // A real change is still drift: kubectl scale deploy m --replicas=3.
        await harness.Admin.AppsV1.ReplaceNamespacedDeploymentScaleAsync(new V1Scale { Metadata = new V1ObjectMeta { Name = "m", NamespaceProperty = "default" }, Spec = new V1ScaleSpec { Replicas = 3 } }, "m", "default");
        await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ReadNamespacedDeploymentAsync("m", "default")).Spec.Replicas == 1, Wait, "the replica count is restored");
        await Eventually.HoldsAsync(() => Task.FromResult(measured.Total(Drift, "kind=Deployment") == 1), Wait, "one Deployment correction is counted");
    }
}
