using System.Net;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary><see cref="IModelCluster"/> over KubernetesClient's typed clients.</summary>
public sealed class KubernetesModelCluster(IKubernetes client, TimeProvider time) : IModelCluster, IModelPods
{
    private const string G = V1Alpha1DeepSeekModel.Group;
    private const string V = V1Alpha1DeepSeekModel.Version;
    private const string P = V1Alpha1DeepSeekModel.Plural;

    public async Task<V1Alpha1DeepSeekModel?> GetModelAsync(string ns, string name, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await client.CustomObjects.GetNamespacedCustomObjectWithHttpMessagesAsync<V1Alpha1DeepSeekModel>(
                G, V, ns, P, name, cancellationToken: cancellationToken);
            return response.Body;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public async Task WriteStatusAsync(V1Alpha1DeepSeekModel model, DeepSeekModelStatus status, CancellationToken cancellationToken)
    {
        // Replace through the status subresource with the resourceVersion we read: a stale read is refused (409).
        var body = new V1Alpha1DeepSeekModel { Metadata = model.Metadata, Spec = model.Spec, Status = status };
        using var _ = await client.CustomObjects.ReplaceNamespacedCustomObjectStatusWithHttpMessagesAsync<V1Alpha1DeepSeekModel>(
            body, G, V, model.Metadata.NamespaceProperty, P, model.Metadata.Name, cancellationToken: cancellationToken);
    }

    public async Task<IReadOnlyList<IKubernetesObject<V1ObjectMeta>>> ListChildrenAsync(string ns, string model, CancellationToken cancellationToken)
    {
        var selector = $"{ModelLabels.ManagedSelector},{ModelLabels.Instance}={model}";
        var children = new List<IKubernetesObject<V1ObjectMeta>>();
        children.AddRange(Typed((await client.CoreV1.ListNamespacedConfigMapAsync(ns, labelSelector: selector, cancellationToken: cancellationToken)).Items, "v1", "ConfigMap"));
        children.AddRange(Typed((await client.CoreV1.ListNamespacedServiceAsync(ns, labelSelector: selector, cancellationToken: cancellationToken)).Items, "v1", "Service"));
        children.AddRange(Typed((await client.AppsV1.ListNamespacedDeploymentAsync(ns, labelSelector: selector, cancellationToken: cancellationToken)).Items, "apps/v1", "Deployment"));
        children.AddRange(Typed((await client.AppsV1.ListNamespacedStatefulSetAsync(ns, labelSelector: selector, cancellationToken: cancellationToken)).Items, "apps/v1", "StatefulSet"));
        children.AddRange(Typed((await client.PolicyV1.ListNamespacedPodDisruptionBudgetAsync(ns, labelSelector: selector, cancellationToken: cancellationToken)).Items, "policy/v1", "PodDisruptionBudget"));
        return children;
    }

    public async Task<IReadOnlyList<V1Pod>> ListPodsAsync(string ns, string labelSelector, CancellationToken cancellationToken) =>
        (await client.CoreV1.ListNamespacedPodAsync(ns, labelSelector: labelSelector, cancellationToken: cancellationToken)).Items.ToList();

    public async Task ApplyAsync(ChildAction action, CancellationToken cancellationToken)
    {
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
                case (ChildActionKind.Update, V1ConfigMap o): await client.CoreV1.ReplaceNamespacedConfigMapAsync(o, name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Update, V1Service o): await client.CoreV1.ReplaceNamespacedServiceAsync(o, name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Update, V1Deployment o): await client.AppsV1.ReplaceNamespacedDeploymentAsync(o, name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Update, V1StatefulSet o): await client.AppsV1.ReplaceNamespacedStatefulSetAsync(o, name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Update, V1PodDisruptionBudget o): await client.PolicyV1.ReplaceNamespacedPodDisruptionBudgetAsync(o, name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Delete, V1ConfigMap): await client.CoreV1.DeleteNamespacedConfigMapAsync(name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Delete, V1Service): await client.CoreV1.DeleteNamespacedServiceAsync(name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Delete, V1Deployment): await client.AppsV1.DeleteNamespacedDeploymentAsync(name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Delete, V1StatefulSet): await client.AppsV1.DeleteNamespacedStatefulSetAsync(name, ns, cancellationToken: cancellationToken); break;
                case (ChildActionKind.Delete, V1PodDisruptionBudget): await client.PolicyV1.DeleteNamespacedPodDisruptionBudgetAsync(name, ns, cancellationToken: cancellationToken); break;
                default: throw new NotSupportedException($"The operator does not manage {item.Kind} objects.");
            }
        }
        catch (HttpOperationException e) when (action.Kind == ChildActionKind.Delete && e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            // Already gone (garbage collection or a user): the goal is reached.
        }
    }

    public async Task RecordEventAsync(V1Alpha1DeepSeekModel model, string type, string reason, string message, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var ns = model.Metadata.NamespaceProperty ?? "default";
        var @event = new Corev1Event
        {
            Metadata = new V1ObjectMeta { Name = $"{model.Metadata.Name}.{Guid.NewGuid():N}"[..Math.Min(253, model.Metadata.Name.Length + 33)], NamespaceProperty = ns },
            InvolvedObject = new V1ObjectReference
            {
                ApiVersion = V1Alpha1DeepSeekModel.GroupVersion,
                Kind = V1Alpha1DeepSeekModel.KindName,
                Name = model.Metadata.Name,
                NamespaceProperty = ns,
                Uid = model.Metadata.Uid,
                ResourceVersion = model.Metadata.ResourceVersion,
            },
            Type = type,
            Reason = reason,
            Message = message,
            Count = 1,
            FirstTimestamp = now,
            LastTimestamp = now,
            Source = new V1EventSource { Component = ModelLabels.OperatorName },
            ReportingComponent = ModelLabels.OperatorName,
        };
        await client.CoreV1.CreateNamespacedEventAsync(@event, ns, cancellationToken: cancellationToken);
    }

    /// <summary>List items come without kind/apiVersion; the plan matches children by kind.</summary>
    private static IEnumerable<IKubernetesObject<V1ObjectMeta>> Typed<T>(IEnumerable<T> items, string apiVersion, string kind) where T : IKubernetesObject<V1ObjectMeta>
    {
        foreach (var item in items)
        {
            item.ApiVersion = apiVersion;
            item.Kind = kind;
            yield return item;
        }
    }
}
