using System.Text.Json.Nodes;
using DeepSeek.Gateway.Cluster;
using DeepSeek.KubernetesTestServer;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using k8s;
using k8s.Models;

namespace DeepSeek.Gateway.Tests.Infrastructure;

/// <summary>
/// The in-process Kubernetes API server for the gateway's cluster mode: DeepSeekModels (with the scale
/// subresource), pods and Secrets. The gateway talks to it as user <c>gateway</c>, with exactly the rights
/// of <see cref="GatewayPermissions"/>, and on Secrets only those named in <see cref="KeySecrets"/> (the
/// chart's resourceNames: a list or watch must name one by a field selector); the test acts as <c>admin</c>
/// and plays the operator and the kubelet (it creates the pods a model would get, and marks them ready).
/// </summary>
internal sealed class TestCluster : IAsyncDisposable
{
    private TestCluster(TestApiServer server)
    {
        Server = server;
        Admin = Client("admin");
        Gateway = Client("gateway");
    }

    public TestApiServer Server { get; }

    public Kubernetes Admin { get; }

    /// <summary>The gateway's client: pass it to <see cref="RunningGateway.StartAsync"/>.</summary>
    public Kubernetes Gateway { get; }

    public static async Task<TestCluster> StartAsync()
    {
        var server = await TestApiServer.StartAsync();
        server.Register(new ResourceType(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, V1Alpha1DeepSeekModel.KindName, V1Alpha1DeepSeekModel.Plural, HasScale: true));
        var cluster = new TestCluster(server);
        server.Authorize = r => r.User == "admin" || (r.User == "gateway" && GatewayPermissions.Allows(r.Group, r.Resource, r.Verb)
            && (r.Resource != "secrets" || cluster.KeySecrets.Contains($"{r.Namespace}/{r.Name}")));
        return cluster;
    }

    /// <summary>The Secrets (<c>namespace/name</c>) the gateway may read, as the chart grants them by resourceNames.</summary>
    public ISet<string> KeySecrets { get; } = new HashSet<string>(StringComparer.Ordinal);

    public Kubernetes Client(string user) => new(new KubernetesClientConfiguration { Host = Server.BaseUri.ToString(), AccessToken = user });

    /// <summary>A CPU model (no source: the runtime image's demo model) with the given served name, gateway weight (null: the default) and replicas.</summary>
    public async Task CreateModelAsync(string ns, string name, string? servedName = null, int? weight = null, int replicas = 1)
    {
        var model = new V1Alpha1DeepSeekModel
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
            Spec = new DeepSeekModelSpec
            {
                Model = new ModelSpec { ServedName = servedName },
                Runtime = new RuntimeSpec { GpusPerPod = 0 },
                Replicas = replicas,
                Gateway = new GatewaySpec { Weight = weight ?? GatewaySpec.DefaultWeight },
            },
        };
        await Admin.CustomObjects.CreateNamespacedCustomObjectAsync(model, V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, ns, V1Alpha1DeepSeekModel.Plural);
    }

    /// <summary>A merge patch of a model's spec, as <c>kubectl patch --type merge</c> does it.</summary>
    public async Task PatchModelSpecAsync(string ns, string name, JsonObject spec) =>
        await Admin.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch(new JsonObject { ["spec"] = spec }.ToJsonString(), V1Patch.PatchType.MergePatch),
            V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, ns, V1Alpha1DeepSeekModel.Plural, name);

    /// <summary>The model's spec.replicas as stored.</summary>
    public int? StoredReplicas(string ns, string name)
    {
        var type = new ResourceType(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, V1Alpha1DeepSeekModel.KindName, V1Alpha1DeepSeekModel.Plural, HasScale: true);
        return (int?)Server.Store.Get(type, ns, name)?["spec"]?["replicas"];
    }

    /// <summary>Plays the operator and the kubelet: a runtime pod of <paramref name="model"/> (its labels) whose <c>http</c> port is <paramref name="upstream"/>'s, at 127.0.0.1.</summary>
    public async Task CreatePodAsync(string ns, string model, string pod, string upstream, bool ready)
    {
        await Admin.CoreV1.CreateNamespacedPodAsync(new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = pod, NamespaceProperty = ns, Labels = ModelLabels.For(model) },
            Spec = new V1PodSpec
            {
                Containers = [new V1Container { Name = "runtime", Image = "runtime:test", Ports = [new V1ContainerPort { Name = "http", ContainerPort = new Uri(upstream).Port }] }],
            },
        }, ns);
        await SetPodReadyAsync(ns, pod, ready);
    }

    /// <summary>Plays the kubelet: the pod's Ready condition (its IP is 127.0.0.1 either way).</summary>
    public async Task SetPodReadyAsync(string ns, string pod, bool ready)
    {
        var current = await Admin.CoreV1.ReadNamespacedPodAsync(pod, ns);
        current.Status = new V1PodStatus
        {
            Phase = "Running",
            PodIP = "127.0.0.1",
            Conditions = [new V1PodCondition { Type = "Ready", Status = ready ? "True" : "False" }],
        };
        await Admin.CoreV1.ReplaceNamespacedPodStatusAsync(current, pod, ns);
    }

    /// <summary>Creates or replaces a Secret holding one data entry, <c>keys.yaml</c>.</summary>
    public async Task PutKeySecretAsync(string ns, string name, string keysYaml)
    {
        var secret = new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
            StringData = new Dictionary<string, string> { ["keys.yaml"] = keysYaml },
        };
        try
        {
            await Admin.CoreV1.ReplaceNamespacedSecretAsync(secret, name, ns);
        }
        catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            await Admin.CoreV1.CreateNamespacedSecretAsync(secret, ns);
        }
    }

    /// <summary>The gateway's scale patches (PATCH of deepseekmodels/scale) of one model, as the API server logged them.</summary>
    public IReadOnlyList<RequestRecord> ScalePatches(string ns, string name) =>
        [.. Server.Requests.Where(r => r.User == "gateway" && r.Verb == "patch" && r.Resource == V1Alpha1DeepSeekModel.Plural + "/scale" && r.Namespace == ns && r.Name == name)];

    public async ValueTask DisposeAsync()
    {
        Admin.Dispose();
        Gateway.Dispose();
        await Server.DisposeAsync();
    }
}
