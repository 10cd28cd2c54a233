using System.Diagnostics;
using System.Globalization;
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

// Cold start of the operator against the in-process test API server: N DeepSeekModels exist, the
// operator starts (leader election on), and the clock runs until every model has its Deployment and
// its status. Requests are counted by the server, per verb and resource; "at rest" counts what the
// operator sends in the quiet seconds after. The server runs in this process too: RSS covers both.
var models = Arg("--models", 1000);
var restSeconds = Arg("--rest-seconds", 10);
var workers = Arg("--workers", 2);

await using var server = await TestApiServer.StartAsync();
var modelType = new ResourceType(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, V1Alpha1DeepSeekModel.KindName, V1Alpha1DeepSeekModel.Plural, HasScale: true);
server.Register(modelType);
server.Authorizer = (user, group, resource, verb) => user == "admin" || OperatorPermissions.Allows(group, resource, verb);
using var admin = new Kubernetes(new KubernetesClientConfiguration { Host = server.BaseUri.ToString(), AccessToken = "admin" });
for (var i = 0; i < models; i++)
{
    await admin.CustomObjects.CreateNamespacedCustomObjectAsync(new V1Alpha1DeepSeekModel
    {
        Metadata = new V1ObjectMeta { Name = $"m{i:D4}", NamespaceProperty = "default" },
        Spec = new DeepSeekModelSpec { Model = new ModelSpec { Source = new ModelSource { Pvc = new PvcModelSource { ClaimName = "weights" } } } },
    }, V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, "default", V1Alpha1DeepSeekModel.Plural);
}
var deploymentType = ResourceType.BuiltIn.Single(t => t.Kind == "Deployment");

using var client = new Kubernetes(new KubernetesClientConfiguration { Host = server.BaseUri.ToString(), AccessToken = "operator" });
using var host = new OperatorHost(client, new OperatorOptions
{
    HealthPort = null,
    MetricsPort = null,
    HealthAddress = IPAddress.Loopback,
    MetricsAddress = IPAddress.Loopback,
    Defaults = new OperatorDefaults { RuntimeImage = "runtime:bench" },
    LeaderElection = new LeaderElectionSettings { Identity = "bench" },
    Workers = workers,
}, TimeProvider.System, NullLoggerFactory.Instance);
using var stop = new CancellationTokenSource();
var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
var clock = Stopwatch.StartNew();
var run = Task.Run(() => host.RunAsync(stop.Token));

TimeSpan? deployments = null, statuses = null;
long peakRss = 0;
var deadline = TimeSpan.FromMinutes(10);
while ((deployments is null || statuses is null) && clock.Elapsed < deadline && !run.IsCompleted)
{
    peakRss = Math.Max(peakRss, Process.GetCurrentProcess().WorkingSet64);
    if (deployments is null && server.Store.Count(deploymentType, "default") == models) deployments = clock.Elapsed;
    if (statuses is null && server.Store.Count(modelType, "default", m => m["status"] is not null) == models) statuses = clock.Elapsed;
    await Task.Delay(100);
}
var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
var atStart = server.Requests.Where(r => r.User == "operator").ToList();
await Task.Delay(TimeSpan.FromSeconds(restSeconds));
var atRest = server.Requests.Where(r => r.User == "operator").Skip(atStart.Count).ToList();
await stop.CancelAsync();
await run.WaitAsync(TimeSpan.FromSeconds(30));

static string Seconds(TimeSpan? t) => t is { } v ? v.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s" : "did not finish";
var perModel = atStart.Where(r => r.Resource is not "leases" && r.Verb is not ("list" or "watch")).ToList();
Console.WriteLine($"operator cold start: {models} DeepSeekModels, {workers} workers, test API server in process, {Environment.ProcessorCount} cores");
Console.WriteLine();
Console.WriteLine("| models | all Deployments | all statuses | requests per model | of which | lists + watches | requests at rest ({0} s, besides the lease) | CPU time until all statuses (server + operator) | peak RSS (server + operator) |".Replace("{0}", restSeconds.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal));
Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
var breakdown = string.Join(", ", perModel.GroupBy(r => $"{r.Verb} {r.Resource}").OrderBy(g => g.Key, StringComparer.Ordinal)
    .Select(g => $"{g.Key} {(double)g.Count() / models:0.##}"));
Console.WriteLine($"| {models} | {Seconds(deployments)} | {Seconds(statuses)} | {(double)perModel.Count / models:0.##} | {breakdown} | {atStart.Count(r => r.Verb is "list" or "watch")} | {atRest.Count(r => r.Resource is not "leases" && r.Verb is not "watch")} | {cpu.TotalSeconds:0.0} s | {peakRss / (1024 * 1024)} MiB |");
return deployments is null || statuses is null ? 1 : 0;

int Arg(string name, int fallback)
{
    var at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
}
