using System.Diagnostics;
using System.Globalization;
using DeepSeek.KubernetesTestServer;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Hosting;
using DeepSeek.Operator.Security;
using k8s;
using k8s.Models;

// Cold start of the operator against the in-process test API server: N DeepSeekModels exist, the
// operator executable (`deepseek-operator run`, leader election on) starts as its own process, and
// the clock runs until every model has its Deployment and its status. The server counts the requests
// by verb and resource; "at rest" counts what the operator sends in the quiet seconds after. CPU
// time and peak RSS are the operator process's alone (/proc), not the server's.
var models = Arg("--models", 1000);
var restSeconds = Arg("--rest-seconds", 10);
var workers = Arg("--workers", OperatorOptions.DefaultWorkers);
// A real API server answers a write after etcd has it: tens of milliseconds (20–50 ms measured on a
// kube-apiserver 1.32 with etcd). The in-process server answers at once unless told to wait.
var latencyMs = Arg("--latency-ms", 0);

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
server.Latency = TimeSpan.FromMilliseconds(latencyMs);

var work = Directory.CreateTempSubdirectory("operator-bench-");
var kubeconfig = Path.Combine(work.FullName, "kubeconfig");
await File.WriteAllTextAsync(kubeconfig, $"""
    apiVersion: v1
    kind: Config
    clusters: [{"{"}name: bench, cluster: {"{"}server: "{server.BaseUri.ToString().TrimEnd('/')}"{"}"}{"}"}]
    users: [{"{"}name: operator, user: {"{"}token: operator{"}"}{"}"}]
    contexts: [{"{"}name: bench, context: {"{"}cluster: bench, user: operator{"}"}{"}"}]
    current-context: bench
    """);
var executable = Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "deepseek-operator.exe" : "deepseek-operator");
var start = new ProcessStartInfo(executable)
{
    RedirectStandardOutput = true,
    RedirectStandardError = true,
    ArgumentList =
    {
        "run", "--kubeconfig", kubeconfig, "--leader-election-namespace", "default", "--workers", workers.ToString(CultureInfo.InvariantCulture),
        "--health-port", "0", "--metrics-port", "0", "--health-bind-address", "127.0.0.1", "--metrics-bind-address", "127.0.0.1", "--runtime-image", "runtime:bench",
    },
};
start.Environment["POD_NAME"] = "bench";
var clock = Stopwatch.StartNew();
using var operatorProcess = Process.Start(start) ?? throw new InvalidOperationException($"could not start {executable}");
var log = new System.Text.StringBuilder();
operatorProcess.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
operatorProcess.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
operatorProcess.BeginOutputReadLine();
operatorProcess.BeginErrorReadLine();

TimeSpan? deployments = null, statuses = null;
var deadline = TimeSpan.FromMinutes(10);
while ((deployments is null || statuses is null) && clock.Elapsed < deadline && !operatorProcess.HasExited)
{
    if (deployments is null && server.Store.Count(deploymentType, "default") == models) deployments = clock.Elapsed;
    if (statuses is null && server.Store.Count(modelType, "default", m => m["status"] is not null) == models) statuses = clock.Elapsed;
    await Task.Delay(50);
}
var cpu = ProcessCpu(operatorProcess.Id);
var atStart = server.Requests.Where(r => r.User == "operator").ToList();
await Task.Delay(TimeSpan.FromSeconds(restSeconds));
var atRest = server.Requests.Where(r => r.User == "operator").Skip(atStart.Count).ToList();
var peakRss = PeakRss(operatorProcess.Id);
// SIGTERM, as the kubelet stops a pod: the operator releases its lease and exits (a profiler's trace is then complete).
using (var term = Process.Start("kill", ["-TERM", operatorProcess.Id.ToString(CultureInfo.InvariantCulture)])) await term.WaitForExitAsync();
using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
{
    try { await operatorProcess.WaitForExitAsync(grace.Token); }
    catch (OperationCanceledException) { operatorProcess.Kill(entireProcessTree: true); await operatorProcess.WaitForExitAsync(); }
}
work.Delete(recursive: true);
if (deployments is null || statuses is null)
{
    Console.Error.WriteLine("the operator did not finish; its log:");
    lock (log) Console.Error.WriteLine(log.ToString());
}

static string Seconds(TimeSpan? t) => t is { } v ? v.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s" : "did not finish";
var perModel = atStart.Where(r => r.Resource is not "leases" && r.Verb is not ("list" or "watch")).ToList();
Console.WriteLine($"operator cold start: {models} DeepSeekModels, {workers} workers, test API server in the bench process answering after {latencyMs} ms, {Environment.ProcessorCount} cores");
Console.WriteLine();
Console.WriteLine("| models | workers | server latency | all Deployments | all statuses | requests per model | of which | lists + watches | requests at rest ({0} s, besides the lease) | operator CPU time until all statuses | operator peak RSS |".Replace("{0}", restSeconds.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal));
Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
var breakdown = string.Join(", ", perModel.GroupBy(r => $"{r.Verb} {r.Resource}").OrderBy(g => g.Key, StringComparer.Ordinal)
    .Select(g => $"{g.Key} {(double)g.Count() / models:0.##}"));
Console.WriteLine($"| {models} | {workers} | {latencyMs} ms | {Seconds(deployments)} | {Seconds(statuses)} | {(double)perModel.Count / models:0.##} | {breakdown} | {atStart.Count(r => r.Verb is "list" or "watch")} | {atRest.Count(r => r.Resource is not "leases" && r.Verb is not "watch")} | {cpu.TotalSeconds:0.0} s | {peakRss / (1024 * 1024)} MiB |");
return deployments is null || statuses is null ? 1 : 0;

int Arg(string name, int fallback)
{
    var at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
}

// utime + stime of /proc/PID/stat (fields 14 and 15, after the parenthesised command name), in clock ticks of 1/100 s.
static TimeSpan ProcessCpu(int pid)
{
    var stat = File.ReadAllText($"/proc/{pid}/stat");
    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
    var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    return TimeSpan.FromSeconds(ticks / 100.0);
}

// VmHWM: the peak resident set size, in kB.
static long PeakRss(int pid) =>
    long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
