using DeepSeek.KubernetesTestServer;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Hosting;
using DeepSeek.Operator.Security;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;

namespace DeepSeek.Autoscaling.EndToEndTests.Infrastructure;

/// <summary>
/// The test API server (with the operator held to <see cref="OperatorPermissions"/>), an admin
/// client for the test, and one operator (an in-process host talking HTTP to the server, with its
/// /metrics endpoint on a free port).
/// </summary>
public sealed class AutoscalingHarness : IAsyncDisposable
{
    private readonly CancellationTokenSource stop = new();
    private Task? run;
    private OperatorHost? host;
    private Kubernetes? operatorClient;

    private AutoscalingHarness(TestApiServer server)
    {
        Server = server;
        Admin = new Kubernetes(new KubernetesClientConfiguration { Host = server.BaseUri.ToString(), AccessToken = "admin" });
    }

    public TestApiServer Server { get; }
    public Kubernetes Admin { get; }
    public int MetricsPort { get; private set; }

    public static async Task<AutoscalingHarness> StartAsync()
    {
        var server = await TestApiServer.StartAsync();
        server.Register(new ResourceType(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, V1Alpha1DeepSeekModel.KindName, V1Alpha1DeepSeekModel.Plural, HasScale: true));
        server.Authorizer = (user, group, resource, verb) => user == "admin" || OperatorPermissions.Allows(group, resource, verb);
        return new AutoscalingHarness(server);
    }

    public void StartOperator()
    {
        MetricsPort = FreePort.Next();
        operatorClient = new Kubernetes(new KubernetesClientConfiguration { Host = Server.BaseUri.ToString(), AccessToken = "operator" });
        host = new OperatorHost(operatorClient, new OperatorOptions
        {
            HealthPort = null,
            MetricsPort = MetricsPort,
            Defaults = new OperatorDefaults { RuntimeImage = "runtime:test" },
            LeaderElection = null,
        }, TimeProvider.System, NullLoggerFactory.Instance);
        run = Task.Run(() => host.RunAsync(stop.Token));
    }

    public async Task<string> ScrapeMetricsAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        return await http.GetStringAsync(new Uri($"http://127.0.0.1:{MetricsPort}/metrics"));
    }

    public Task CreateModelAsync(V1Alpha1DeepSeekModel model) =>
        Admin.CustomObjects.CreateNamespacedCustomObjectAsync(model, V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, "default", V1Alpha1DeepSeekModel.Plural);

    public Task<V1Alpha1DeepSeekModel> GetModelAsync(string name) =>
        Admin.CustomObjects.GetNamespacedCustomObjectAsync<V1Alpha1DeepSeekModel>(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, "default", V1Alpha1DeepSeekModel.Plural, name);

    public async Task<int?> DeploymentReplicasAsync(string name) =>
        (await Admin.AppsV1.ListNamespacedDeploymentAsync("default", labelSelector: ModelLabels.SelectorString(name))).Items.SingleOrDefault()?.Spec.Replicas;

    public async Task<IReadOnlyList<string>> GroupNamesAsync(string name) =>
        (await Admin.AppsV1.ListNamespacedStatefulSetAsync("default", labelSelector: ModelLabels.SelectorString(name))).Items.Select(s => s.Metadata.Name).Order(StringComparer.Ordinal).ToList();

    public async Task<IReadOnlyList<Corev1Event>> EventsAsync(string reason) =>
        (await Admin.CoreV1.ListNamespacedEventAsync("default")).Items.Where(e => e.Reason == reason).ToList();

    /// <summary>A model on a PVC with built-in autoscaling: short windows and a 1 s poll.</summary>
    public static V1Alpha1DeepSeekModel Model(string name, int max, double target, int downWindowSeconds, int podsPerReplica = 1) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new DeepSeekModelSpec
        {
            Model = new ModelSpec { Source = new ModelSource { Pvc = new PvcModelSource { ClaimName = "weights" } } },
            Parallelism = new ParallelismSpec { PodsPerReplica = podsPerReplica },
            Runtime = new RuntimeSpec { GpusPerPod = podsPerReplica > 1 ? 8 : 1 },
            Autoscaling = new AutoscalingSpec
            {
                Enabled = true,
                MinReplicas = 1,
                MaxReplicas = max,
                TargetQueueDepth = target,
                PollIntervalSeconds = 1,
                ScaleUpStabilizationSeconds = 0,
                ScaleDownStabilizationSeconds = downWindowSeconds,
            },
        },
    };

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        if (run is not null)
        {
            try { await run.WaitAsync(TimeSpan.FromSeconds(20)); } catch (OperationCanceledException) { }
        }
        host?.Dispose();
        operatorClient?.Dispose();
        Admin.Dispose();
        await Server.DisposeAsync();
        stop.Dispose();
    }
}
