using k8s;
using k8s.Exceptions;

namespace DeepSeek.Operator.Cli;

/// <summary>
/// Finds the cluster the way kubectl does: an explicit kubeconfig, then <c>KUBECONFIG</c>, then
/// the in-cluster service account, then <c>~/.kube/config</c>; and says plainly when there is none.
/// </summary>
public static class ClusterConnection
{
    public static KubernetesClientConfiguration Resolve(string? kubeconfig)
    {
        try
        {
            return Find(kubeconfig);
        }
        catch (KubeConfigException e)
        {
            throw new ClusterUnreachableException($"Kubernetes configuration is unusable: {e.Message}", e);
        }
    }

    private static KubernetesClientConfiguration Find(string? kubeconfig)
    {
        if (!string.IsNullOrEmpty(kubeconfig))
        {
            if (!File.Exists(kubeconfig))
                throw new ClusterUnreachableException($"kubeconfig '{kubeconfig}' does not exist.");
            return KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig);
        }
        var fromEnvironment = Environment.GetEnvironmentVariable("KUBECONFIG");
        if (!string.IsNullOrEmpty(fromEnvironment))
            return KubernetesClientConfiguration.BuildConfigFromConfigFile(fromEnvironment);
        if (KubernetesClientConfiguration.IsInCluster())
            return KubernetesClientConfiguration.InClusterConfig();
        var home = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".kube", "config");
        if (File.Exists(home))
            return KubernetesClientConfiguration.BuildConfigFromConfigFile(home);
        throw new ClusterUnreachableException(
            "No Kubernetes configuration found: pass --kubeconfig, set KUBECONFIG, or run inside a cluster with a service account.");
    }

    /// <summary>Asks the API server for its version: cheap, needs no RBAC, proves the address and credentials work.</summary>
    public static async Task<string> ProbeAsync(IKubernetes client, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            var version = await client.Version.GetCodeAsync(deadline.Token);
            return version.GitVersion;
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or KubeConfigException or k8s.Autorest.HttpOperationException)
        {
            if (cancellationToken.IsCancellationRequested) throw;
            throw new ClusterUnreachableException($"Kubernetes API server at {client.BaseUri} is not reachable: {e.Message}", e);
        }
    }
}
