using System.Net;
using DeepSeek.KubernetesTestServer;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Hosting;
using DeepSeek.Operator.Leadership;
using DeepSeek.Operator.Security;
using DeepSeek.Operator.Tests.Support;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>The test API server, an admin client for the test, and operator processes (in-process hosts) talking HTTP to it.</summary>
public sealed class OperatorHarness : IAsyncDisposable
{
    private readonly List<(CancellationTokenSource Stop, Task Run, OperatorHost Host, Kubernetes Client)> operators = [];
    private readonly Dictionary<string, OperatorHost> hosts = new(StringComparer.Ordinal);

    private OperatorHarness(TestApiServer server)
    {
        Server = server;
        Admin = Client("admin");
    }

    public TestApiServer Server { get; }
    public Kubernetes Admin { get; }

    public static async Task<OperatorHarness> StartAsync()
    {
        var server = await TestApiServer.StartAsync();
        server.Register(new ResourceType(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, V1Alpha1DeepSeekModel.KindName, V1Alpha1DeepSeekModel.Plural, HasScale: true));
        // The operator gets exactly the rights OperatorPermissions lists; the test itself acts as admin.
        server.Authorizer = (user, group, resource, verb) => user == "admin" || OperatorPermissions.Allows(group, resource, verb);
        return new OperatorHarness(server);
    }

    public Kubernetes Client(string user) => new(new KubernetesClientConfiguration { Host = Server.BaseUri.ToString(), AccessToken = user });

    /// <summary>Starts an operator as <paramref name="identity"/>; stop it by cancelling the returned source.</summary>
    /// <param name="identity">User name towards the API server and leader-election identity.</param>
    /// <param name="election">Lease settings (with leaderElect).</param>
    /// <param name="leaderElect">Reconcile only while holding the lease.</param>
    /// <param name="healthPort">Loopback port of /healthz and /readyz; null: none.</param>
    /// <param name="metricsPort">Loopback port of /metrics; null: none.</param>
    /// <param name="loggers">Where the operator logs; none by default.</param>
    /// <param name="metricsAddress">Loopback address of /metrics (default 127.0.0.1).</param>
    /// <param name="watchNamespaces">The namespaces watched (<c>--watch-namespace</c>); none: all.</param>
    public (CancellationTokenSource Stop, Task Run) StartOperator(string identity, LeaderElectionSettings? election = null, bool leaderElect = false, int? healthPort = null, int? metricsPort = null,
        ILoggerFactory? loggers = null, IPAddress? metricsAddress = null, IReadOnlyList<string>? watchNamespaces = null)
    {
        var client = Client(identity);
        var options = new OperatorOptions
        {
            HealthPort = healthPort,
            MetricsPort = metricsPort,
            HealthAddress = IPAddress.Loopback,
            MetricsAddress = metricsAddress ?? IPAddress.Loopback,
            Defaults = new OperatorDefaults { RuntimeImage = "runtime:test", CpuRuntimeImage = "runtime:test-cpu" },
            LeaderElection = leaderElect ? (election ?? new LeaderElectionSettings()) with { Identity = identity } : null,
            WatchNamespaces = watchNamespaces ?? [],
        };
        var host = new OperatorHost(client, options, TimeProvider.System, loggers ?? (Environment.GetEnvironmentVariable("OPERATOR_TEST_LOG") == "1" ? LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Debug)) : NullLoggerFactory.Instance));
        var stop = new CancellationTokenSource();
        var run = Task.Run(() => host.RunAsync(stop.Token));
        operators.Add((stop, run, host, client));
        hosts[identity] = host;
        return (stop, run);
    }

    /// <summary>The counters of the operator started as <paramref name="identity"/>, from now on.</summary>
    public OperatorMeasurements Measure(string identity) => new(hosts[identity].Metrics);

    public async Task CreateModelAsync(V1Alpha1DeepSeekModel model) =>
        await Admin.CustomObjects.CreateNamespacedCustomObjectAsync(model, V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, model.Metadata.NamespaceProperty, V1Alpha1DeepSeekModel.Plural);

    public async Task<V1Alpha1DeepSeekModel> GetModelAsync(string name, string ns = "default") =>
        await Admin.CustomObjects.GetNamespacedCustomObjectAsync<V1Alpha1DeepSeekModel>(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, ns, V1Alpha1DeepSeekModel.Plural, name);

    /// <summary>
    /// Read-modify-write of a model as a client does it against a real API server: the operator writes
    /// the model's status concurrently, so a replace can meet 409 Conflict; read again and retry.
    /// </summary>
    public async Task UpdateModelAsync(string name, Action<V1Alpha1DeepSeekModel> change, string ns = "default")
    {
        for (var attempt = 1; ; attempt++)
        {
            var model = await GetModelAsync(name, ns);
            change(model);
            try
            {
                await ReplaceModelAsync(model);
                return;
            }
            catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.Conflict && attempt < 20)
            {
                await Task.Delay(50);
            }
        }
    }

    public async Task ReplaceModelAsync(V1Alpha1DeepSeekModel model) =>
        await Admin.CustomObjects.ReplaceNamespacedCustomObjectAsync(model, V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, model.Metadata.NamespaceProperty, V1Alpha1DeepSeekModel.Plural, model.Metadata.Name);

    /// <summary>Plays the Deployment controller and kubelet: every pod of the Deployment is up to date and ready.</summary>
    public async Task MarkDeploymentReadyAsync(string name, string ns = "default")
    {
        var deployment = await Admin.AppsV1.ReadNamespacedDeploymentAsync(name, ns);
        var replicas = deployment.Spec.Replicas ?? 1;
        deployment.Status = new V1DeploymentStatus { Replicas = replicas, ReadyReplicas = replicas, UpdatedReplicas = replicas, AvailableReplicas = replicas, ObservedGeneration = deployment.Metadata.Generation };
        await Admin.AppsV1.ReplaceNamespacedDeploymentStatusAsync(deployment, name, ns);
    }

    /// <summary>Plays the kubelet: a pod of the model (its labels) in the given container state.</summary>
    public async Task CreatePodAsync(string name, string model, V1ContainerStatus container, string ns = "default", IDictionary<string, string>? extraLabels = null)
    {
        var labels = ModelLabels.For(model);
        foreach (var (key, value) in extraLabels ?? new Dictionary<string, string>()) labels[key] = value;
        var pod = await Admin.CoreV1.CreateNamespacedPodAsync(new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Labels = labels },
            Spec = new V1PodSpec { Containers = [new V1Container { Name = "runtime", Image = "runtime:test" }] },
        }, ns);
        pod.Status = new V1PodStatus { Phase = "Pending", ContainerStatuses = [container] };
        await Admin.CoreV1.ReplaceNamespacedPodStatusAsync(pod, name, ns);
    }

    public static V1Alpha1DeepSeekModel Model(string name, int replicas = 1) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new DeepSeekModelSpec
        {
            Model = new ModelSpec { Source = new ModelSource { Pvc = new PvcModelSource { ClaimName = "weights" } } },
            Replicas = replicas,
        },
    };

    public async ValueTask DisposeAsync()
    {
        foreach (var (stop, run, host, client) in operators)
        {
            await stop.CancelAsync();
            try { await run.WaitAsync(TimeSpan.FromSeconds(20)); } catch (OperationCanceledException) { }
            host.Dispose();
            client.Dispose();
            stop.Dispose();
        }
        Admin.Dispose();
        await Server.DisposeAsync();
    }
}
