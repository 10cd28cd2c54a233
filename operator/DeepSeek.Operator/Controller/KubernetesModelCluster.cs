using System.Net;
using DeepSeek.Operator.Api.V1Alpha1;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary><see cref="IModelCluster"/> over the watch caches; children are written through the kind table (<see cref="WatchedKinds"/>).</summary>
public sealed class KubernetesModelCluster(IKubernetes client, ClusterCache cache, EventRecorder events) : IModelCluster
{
    public DeepSeekModelDocument? GetModel(string ns, string name) => cache.Models.Get(ns, name);

    public IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Children(string ns, string model) => cache.Children(ns, model);

    public IReadOnlyList<V1Pod> Pods(string ns, string model) => cache.PodsOf(ns, model);

    public async Task<IReadOnlyList<Corev1Event>> WarningsAboutAsync(IKubernetesObject<V1ObjectMeta> workload, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workload);
        var list = await client.CoreV1.ListNamespacedEventAsync(workload.Metadata.NamespaceProperty ?? "default",
            fieldSelector: $"involvedObject.uid={workload.Metadata.Uid}", cancellationToken: cancellationToken);
        return list.Items.Where(e => e.Type == "Warning").OrderByDescending(e => e.LastTimestamp ?? e.EventTime ?? e.Metadata.CreationTimestamp).ToList();
    }

    public async Task WriteStatusAsync(V1ObjectMeta model, DeepSeekModelStatus status, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        // Through the status subresource, which takes only status from the body; the resourceVersion
        // read from the cache makes a write from a stale read fail (409) instead of overwriting.
        var body = new V1Alpha1DeepSeekModelStatusBody
        {
            Metadata = new V1ObjectMeta { Name = model.Name, NamespaceProperty = model.NamespaceProperty, ResourceVersion = model.ResourceVersion },
            Status = status,
        };
        using var _ = await client.CustomObjects.ReplaceNamespacedCustomObjectStatusWithHttpMessagesAsync<DeepSeekModelDocument>(
            body, WatchedKinds.Models.Group, WatchedKinds.Models.Version, model.NamespaceProperty ?? "default", WatchedKinds.Models.Plural, model.Name, cancellationToken: cancellationToken);
    }

    public async Task ApplyAsync(ChildAction action, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(action);
        var kind = WatchedKinds.Of(action.Object) ?? throw new NotSupportedException($"The operator does not manage {action.Object.Kind} objects.");
        try
        {
            await kind.ApplyAsync(client, action, cancellationToken);
        }
        catch (HttpOperationException e) when (action.Kind == ChildActionKind.Delete && e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            // Already gone (garbage collection or a user): the goal is reached.
        }
    }

    public async Task<V1Secret?> ReadSecretAsync(string ns, string name, CancellationToken cancellationToken)
    {
        try
        {
            return await client.CoreV1.ReadNamespacedSecretAsync(name, ns, cancellationToken: cancellationToken);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public async Task CreateSecretAsync(V1Secret secret, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(secret);
        await client.CoreV1.CreateNamespacedSecretAsync(secret, secret.Metadata.NamespaceProperty ?? "default", cancellationToken: cancellationToken);
    }

    public Task RecordEventAsync(V1ObjectMeta model, string type, string reason, string message, CancellationToken cancellationToken) =>
        events.RecordAsync(model, type, reason, message, cancellationToken);
}
