namespace DeepSeek.Autoscaling.EndToEndTests.Infrastructure;

/// <summary>
/// What a Service's endpoints are for the load generator: the runtimes whose Pod is Ready. The
/// played kubelet adds a runtime once its Pod is created Ready (after <c>/ready</c> answered 200)
/// and removes it before SIGTERM, as the endpoints controller drops a terminating pod; clients
/// pick one at random per request, as kube-proxy does.
/// </summary>
public sealed class ServiceEndpoints
{
    private readonly Lock gate = new();
    private readonly List<RuntimeProcess> ready = [];

    public void Add(RuntimeProcess runtime)
    {
        lock (gate)
        {
            if (!ready.Contains(runtime)) ready.Add(runtime);
        }
    }

    public void Remove(RuntimeProcess runtime)
    {
        lock (gate) ready.Remove(runtime);
    }

    /// <summary>A Ready runtime chosen at random; null while there is none.</summary>
    public RuntimeProcess? Pick()
    {
        lock (gate) return ready.Count == 0 ? null : ready[Random.Shared.Next(ready.Count)];
    }
}
