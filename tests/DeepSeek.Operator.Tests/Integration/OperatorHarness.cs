using System.Net;
using DeepSeek.KubernetesTestServer;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Hosting;
using DeepSeek.Operator.Leadership;
using DeepSeek.Operator.Security;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;

namespace DeepSeek.Operator.Tests.Integration;

/// <summary>The test API server, an admin client for the test, and operator processes (in-process hosts) talking HTTP to it.</summary>
public sealed class OperatorHarness : IAsyncDisposable
{
    private readonly List<(CancellationTokenSource Stop, Task Run, OperatorHost Host, Kubernetes Client)> operators = [];

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
    public (CancellationTokenSource Stop, Task Run) StartOperator(string identity, LeaderElectionSettings? election = null, bool leaderElect = false, int? healthPort = null, int? metricsPort = null)
    {
        var client = Client(identity);
        var options = new OperatorOptions
        {
            HealthPort = healthPort,
            MetricsPort = metricsPort,
            ListenAddress = IPAddress.Loopback,
            Defaults = new OperatorDefaults { RuntimeImage = "runtime:test" },
            LeaderElection = leaderElect ? (election ?? new LeaderElectionSettings()) with { Identity = identity } : null,
        };
        var host = new OperatorHost(client, options, TimeProvider.System, NullLoggerFactory.Instance);
        var stop = new CancellationTokenSource();
        var run = Task.Run(() => host.RunAsync(stop.Token));
        operators.Add((stop, run, host, client));
        return (stop, run);
    }

    public async Task CreateModelAsync(V1Alpha1DeepSeekModel model) =>
        await Admin.CustomObjects.CreateNamespacedCustomObjectAsync(model, V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, model.Metadata.NamespaceProperty, V1Alpha1DeepSeekModel.Plural);

    public async Task<V1Alpha1DeepSeekModel> GetModelAsync(string name, string ns = "default") =>
        await Admin.CustomObjects.GetNamespacedCustomObjectAsync<V1Alpha1DeepSeekModel>(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, ns, V1Alpha1DeepSeekModel.Plural, name);

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
