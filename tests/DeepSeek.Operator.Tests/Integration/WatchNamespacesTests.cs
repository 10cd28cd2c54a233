using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>
/// An operator that watches several namespaces (<c>--watch-namespace</c> twice, the chart's
/// <c>watchNamespaces</c>) keeps every namespace's children in its caches (issue 28, defect 1): one
/// namespace's list must not wipe what another namespace's list brought.
/// </summary>
public sealed class WatchNamespacesTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private static readonly string[] Teams = ["team-a", "team-b"];

    [Fact]
    public async Task A_restarted_operator_watching_two_namespaces_restores_drift_in_both()
    {
        await using var harness = await OperatorHarness.StartAsync();
        var (stop, run) = harness.StartOperator("operator-a", watchNamespaces: Teams);
        foreach (var ns in Teams)
        {
            var model = OperatorHarness.Model("m");
            model.Metadata.NamespaceProperty = ns;
            await harness.CreateModelAsync(model);
        }
        // The status is written after every child of a reconcile: once it is there, operator-a created them all
        // (a Deployment alone is not enough: stopped between it and the Service, operator-b rightly creates the rest).
        foreach (var ns in Teams)
            await Eventually.HoldsAsync(async () => (await harness.GetModelAsync("m", ns)).Status?.ObservedGeneration is not null, Wait, $"every child created and the status written in {ns}");
        foreach (var ns in Teams)
            Assert.Single((await harness.Admin.AppsV1.ListNamespacedDeploymentAsync(ns)).Items);

        // A new process lists every namespace with its children already there: each list must keep the others'.
        await stop.CancelAsync();
        await run.WaitAsync(Wait);
        harness.StartOperator("operator-b", watchNamespaces: Teams);
        await Eventually.HoldsAsync(() => Task.FromResult(harness.Server.Requests.Count(r => r.User == "operator-b" && r.Verb == "list" && r.Resource == "configmaps") == 2), Wait, "the new operator lists both namespaces");

        // kubectl scale in both namespaces.
        foreach (var ns in Teams)
            await harness.Admin.AppsV1.ReplaceNamespacedDeploymentScaleAsync(new V1Scale { Metadata = new V1ObjectMeta { Name = "m", NamespaceProperty = ns }, Spec = new V1ScaleSpec { Replicas = 5 } }, "m", ns);
        foreach (var ns in Teams)
            await Eventually.HoldsAsync(async () => (await harness.Admin.AppsV1.ReadNamespacedDeploymentAsync("m", ns)).Spec.Replicas == 1, Wait, $"the replica count is restored in {ns}");

        Assert.DoesNotContain(harness.Server.Requests, r => r.User == "operator-b" && r.Verb == "create" && r.Resource is "services" or "configmaps" or "deployments");
    }
}
