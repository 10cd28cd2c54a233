using DeepSeek.Gateway.Configuration;
using DeepSeek.Gateway.Hosting;
using DeepSeek.Operator.Cli;
using k8s;

// deepseek-gateway --config FILE [--kubeconfig PATH]: the gateway over the model table of FILE, or, when FILE
// has cluster:, over the DeepSeekModels of the cluster (found as kubectl finds it: --kubeconfig, KUBECONFIG,
// the pod's service account, ~/.kube/config). Exit 2 on a usage or configuration mistake, saying every problem at once.
const string usage = "usage: deepseek-gateway --config FILE [--kubeconfig PATH]   (FILE: the YAML of docs/gateway.md; --kubeconfig with cluster: only)";
if (args is ["--version"])
{
    Console.WriteLine(GatewayHost.Version);
    return 0;
}
if (args is ["--help"] or ["-h"])
{
    Console.WriteLine(usage);
    return 0;
}
string? path = null, kubeconfig = null;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--config" when i + 1 < args.Length && path is null:
            path = args[++i];
            break;
        case "--kubeconfig" when i + 1 < args.Length && kubeconfig is null:
            kubeconfig = args[++i];
            break;
        default:
            await Console.Error.WriteLineAsync(usage);
            return 2;
    }
}
if (string.IsNullOrWhiteSpace(path))
{
    await Console.Error.WriteLineAsync(usage);
    return 2;
}
GatewayConfig config;
IKubernetes? kubernetes = null;
try
{
    config = ConfigFile.Load(path);
    if (config.Cluster is null && kubeconfig is not null) throw new GatewayConfigException($"{path}: --kubeconfig is for a file with cluster:, which this one has not");
    if (config.Cluster is not null) kubernetes = new Kubernetes(ClusterConnection.Resolve(kubeconfig));
}
catch (Exception e) when (e is GatewayConfigException or ClusterUnreachableException)
{
    await Console.Error.WriteLineAsync($"error: {e.Message}");
    return 2;
}
using (kubernetes as IDisposable)
{
    var app = GatewayHost.Build(config, kubernetes: kubernetes);
    GatewayHost.LogStart(app, config);
    await app.RunAsync();
}
return 0;
