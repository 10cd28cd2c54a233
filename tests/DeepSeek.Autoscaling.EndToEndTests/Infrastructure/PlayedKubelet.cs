using DeepSeek.Contract;
using DeepSeek.Operator.Desired;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace DeepSeek.Autoscaling.EndToEndTests.Infrastructure;

/// <summary>
/// The test API server runs no controllers; this plays the ReplicaSet/StatefulSet controllers and
/// the kubelet for one model: it keeps one Ready Pod per wanted replica (a Deployment's replicas, or
/// the leader of each group StatefulSet), with the IP and gRPC port of the replica stand-in of that
/// ordinal, and deletes the Pods of replicas no longer wanted.
/// </summary>
public sealed class PlayedKubelet : IAsyncDisposable
{
    private readonly Kubernetes admin;
    private readonly string model;
    private readonly Func<int, (string Ip, int GrpcPort)> replicaAddress;
    private readonly CancellationTokenSource stop = new();
    private readonly Task loop;

    public PlayedKubelet(Kubernetes admin, string model, Func<int, (string Ip, int GrpcPort)> replicaAddress)
    {
        this.admin = admin;
        this.model = model;
        this.replicaAddress = replicaAddress;
        loop = Task.Run(() => RunAsync(stop.Token));
    }

    /// <summary>The last failure of a round (diagnostics for a test that times out).</summary>
    public string? LastError { get; private set; }

    /// <summary>Called before a replica's Pod is deleted (to drain a real process); by ordinal.</summary>
    public Func<int, Task>? BeforeDelete { get; init; }

    /// <summary>Called before a replica's Pod is created (to start a real process); by ordinal.</summary>
    public Func<int, Task>? BeforeCreate { get; init; }

    /// <summary>Called once a replica's Pod exists and is Ready (to route to it); by ordinal.</summary>
    public Func<int, Task>? AfterReady { get; init; }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await SyncAsync(cancellationToken);
                await Task.Delay(100, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HttpOperationException or HttpRequestException or System.Text.Json.JsonException or TimeoutException)
            {
                // A conflict or a race with the operator, or a process slow to start: the next round tries again.
                LastError = e.Message;
            }
        }
    }

    private async Task SyncAsync(CancellationToken cancellationToken)
    {
        // Wanted pods by name: ordinal and the labels the workload's template gives them.
        var wanted = new Dictionary<string, (int Ordinal, IDictionary<string, string> Labels)>(StringComparer.Ordinal);
        var deployments = await admin.AppsV1.ListNamespacedDeploymentAsync("default", labelSelector: ModelLabels.SelectorString(model), cancellationToken: cancellationToken);
        foreach (var d in deployments.Items)
            for (var i = 0; i < (d.Spec.Replicas ?? 0); i++)
                wanted[$"{d.Metadata.Name}-pod-{i}"] = (i, d.Spec.Template.Metadata.Labels);
        var sets = await admin.AppsV1.ListNamespacedStatefulSetAsync("default", labelSelector: ModelLabels.SelectorString(model), cancellationToken: cancellationToken);
        foreach (var s in sets.Items)
        {
            var ordinal = int.Parse(s.Metadata.Name[(s.Metadata.Name.LastIndexOf("-g", StringComparison.Ordinal) + 2)..], System.Globalization.CultureInfo.InvariantCulture);
            var labels = new Dictionary<string, string>(s.Spec.Template.Metadata.Labels) { [ModelLabels.PodIndex] = "0" };
            wanted[$"{s.Metadata.Name}-0"] = (ordinal, labels);
        }

        var pods = (await admin.CoreV1.ListNamespacedPodAsync("default", labelSelector: ModelLabels.SelectorString(model), cancellationToken: cancellationToken)).Items;
        foreach (var pod in pods.Where(p => !wanted.ContainsKey(p.Metadata.Name)))
        {
            if (BeforeDelete is { } drain)
            {
                // A terminating pod is no longer Ready while it drains (the operator reads it so).
                if (ReplicaReady(pod))
                {
                    pod.Status.Conditions = [new V1PodCondition { Type = "Ready", Status = "False" }];
                    await admin.CoreV1.ReplaceNamespacedPodStatusAsync(pod, pod.Metadata.Name, "default", cancellationToken: cancellationToken);
                }
                await drain(Ordinal(pod));
            }
            await admin.CoreV1.DeleteNamespacedPodAsync(pod.Metadata.Name, "default", cancellationToken: cancellationToken);
        }
        foreach (var (name, (ordinal, labels)) in wanted.Where(w => pods.All(p => p.Metadata.Name != w.Key)))
        {
            if (BeforeCreate is { } start) await start(ordinal);
            var (ip, port) = replicaAddress(ordinal);
            var created = await admin.CoreV1.CreateNamespacedPodAsync(new V1Pod
            {
                Metadata = new V1ObjectMeta
                {
                    Name = name,
                    NamespaceProperty = "default",
                    Labels = new Dictionary<string, string>(labels),
                    Annotations = new Dictionary<string, string> { ["test/ordinal"] = ordinal.ToString(System.Globalization.CultureInfo.InvariantCulture) },
                },
                Spec = new V1PodSpec
                {
                    Containers = [new V1Container { Name = "runtime", Image = "runtime:test", Ports = [new V1ContainerPort { Name = RuntimeContract.GrpcName, ContainerPort = port }] }],
                },
            }, "default", cancellationToken: cancellationToken);
            created.Status = new V1PodStatus
            {
                Phase = "Running",
                PodIP = ip,
                Conditions = [new V1PodCondition { Type = "Ready", Status = "True" }],
            };
            await admin.CoreV1.ReplaceNamespacedPodStatusAsync(created, name, "default", cancellationToken: cancellationToken);
            if (AfterReady is { } route) await route(ordinal);
        }
    }

    private static bool ReplicaReady(V1Pod pod) =>
        pod.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true;

    private static int Ordinal(V1Pod pod) =>
        int.Parse(pod.Metadata.Annotations["test/ordinal"], System.Globalization.CultureInfo.InvariantCulture);

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        try { await loop.WaitAsync(TimeSpan.FromSeconds(20)); } catch (OperationCanceledException) { }
        stop.Dispose();
    }
}
