using System.Net;
using DeepSeek.Operator.Api.V1Alpha1;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary><see cref="IModelCluster"/> over the watch caches and KubernetesClient's typed clients.</summary>
public sealed class KubernetesModelCluster(IKubernetes client, ClusterCache cache, EventRecorder events) : IModelCluster, IModelPods
{
    private const string G = V1Alpha1DeepSeekModel.Group;
    private const string V = V1Alpha1DeepSeekModel.Version;
    private const string P = V1Alpha1DeepSeekModel.Plural;

    public DeepSeekModelDocument? GetModel(string ns, string name) => cache.Models.Get(ns, name);

    public IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Children(string ns, string model) => cache.Children(ns, model);

    public IReadOnlyList<V1Pod> Pods(string ns, string model) => cache.PodsOf(ns, model);

    public Task<IReadOnlyList<V1Pod>> ListPodsAsync(string ns, string labelSelector, CancellationToken cancellationToken)
    {
        var wanted = labelSelector.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(term => term.Split('=', 2)).ToList();
        IReadOnlyList<V1Pod> pods = cache.Pods.List(ns, p => wanted.All(w => p.Metadata.Labels is { } labels && labels.TryGetValue(w[0], out var value) && value == w[1]));
        return Task.FromResult(pods);
    }

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
            body, G, V, model.NamespaceProperty ?? "default", P, model.Name, cancellationToken: cancellationToken);
    }

    public async Task ApplyAsync(ChildAction action, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(action);
        var item = action.Object;
        var ns = item.Metadata.NamespaceProperty;
        var name = item.Metadata.Name;
        try
        {
            switch (action.Kind, item)
            {
                case (ChildActionKind.Create, V1ConfigMap o): await client.CoreV1.CreateNamespacedConfigMapAsync(o, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Create, V1Service o): await client.CoreV1.CreateNamespacedServiceAsync(o, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Create, V1Deployment o): await client.AppsV1.CreateNamespacedDeploymentAsync(o, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Create, V1StatefulSet o): await client.AppsV1.CreateNamespacedStatefulSetAsync(o, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Create, V1PodDisruptionBudget o): await client.PolicyV1.CreateNamespacedPodDisruptionBudgetAsync(o, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Create, V1Secret o): await client.CoreV1.CreateNamespacedSecretAsync(o, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Create, V1NetworkPolicy o): await client.NetworkingV1.CreateNamespacedNetworkPolicyAsync(o, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Update, V1ConfigMap o): await client.CoreV1.ReplaceNamespacedConfigMapAsync(o, name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Update, V1Service o): await client.CoreV1.ReplaceNamespacedServiceAsync(o, name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Update, V1Deployment o): await client.AppsV1.ReplaceNamespacedDeploymentAsync(o, name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Update, V1StatefulSet o): await client.AppsV1.ReplaceNamespacedStatefulSetAsync(o, name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Update, V1PodDisruptionBudget o): await client.PolicyV1.ReplaceNamespacedPodDisruptionBudgetAsync(o, name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Update, V1Secret o): await client.CoreV1.ReplaceNamespacedSecretAsync(o, name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Update, V1NetworkPolicy o): await client.NetworkingV1.ReplaceNamespacedNetworkPolicyAsync(o, name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Delete, V1ConfigMap): await client.CoreV1.DeleteNamespacedConfigMapAsync(name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Delete, V1Service): await client.CoreV1.DeleteNamespacedServiceAsync(name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Delete, V1Deployment): await client.AppsV1.DeleteNamespacedDeploymentAsync(name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Delete, V1StatefulSet): await client.AppsV1.DeleteNamespacedStatefulSetAsync(name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Delete, V1PodDisruptionBudget): await client.PolicyV1.DeleteNamespacedPodDisruptionBudgetAsync(name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Delete, V1Secret): await client.CoreV1.DeleteNamespacedSecretAsync(name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Delete, V1NetworkPolicy): await client.NetworkingV1.DeleteNamespacedNetworkPolicyAsync(name, ns, cancellationToken: cancellationToken); break;
                default: throw new NotSupportedException($"The operator does not manage {item.Kind} objects.");
            }
        }
        catch (HttpOperationException e) when (action.Kind == ChildActionKind.Delete && e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            // Already gone (garbage collection or a user): the goal is reached.
        }
    }

    public Task RecordEventAsync(V1ObjectMeta model, string type, string reason, string message, CancellationToken cancellationToken) =>
        events.RecordAsync(model, type, reason, message, cancellationToken);
}
