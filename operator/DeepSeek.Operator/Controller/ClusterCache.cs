using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>The watch-fed stores the controller reads: models, every kind of child, and the models' pods.</summary>
public sealed class ClusterCache
{
    public ObjectCache<DeepSeekModelDocument> Models { get; } = new();
    public ObjectCache<V1ConfigMap> ConfigMaps { get; } = new(ModelOf);
    public ObjectCache<V1Service> Services { get; } = new(ModelOf);
    public ObjectCache<V1Deployment> Deployments { get; } = new(ModelOf);
    public ObjectCache<V1StatefulSet> StatefulSets { get; } = new(ModelOf);
    public ObjectCache<V1PodDisruptionBudget> DisruptionBudgets { get; } = new(ModelOf);
    /// <summary>Only the operator's own (the watch selects its label): the group token Secrets.</summary>
    public ObjectCache<V1Secret> Secrets { get; } = new(ModelOf);
    public ObjectCache<V1NetworkPolicy> NetworkPolicies { get; } = new(ModelOf);
    public ObjectCache<V1Pod> Pods { get; } = new(p => p.Metadata.Labels?.TryGetValue(ModelLabels.Name, out var app) == true && app == ModelLabels.AppName ? ModelOf(p) : null);

    /// <summary>Children of every kind that carry the model's instance label, typed (list items come without kind).</summary>
    public IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Children(string ns, string model)
    {
        var key = ObjectKey.Of(ns, model);
        var children = new List<IKubernetesObject<V1ObjectMeta>>();
        children.AddRange(Typed(ConfigMaps.ByIndex(key), "v1", "ConfigMap"));
        children.AddRange(Typed(Services.ByIndex(key), "v1", "Service"));
        children.AddRange(Typed(Deployments.ByIndex(key), "apps/v1", "Deployment"));
        children.AddRange(Typed(StatefulSets.ByIndex(key), "apps/v1", "StatefulSet"));
        children.AddRange(Typed(DisruptionBudgets.ByIndex(key), "policy/v1", "PodDisruptionBudget"));
        children.AddRange(Typed(Secrets.ByIndex(key), "v1", "Secret"));
        children.AddRange(Typed(NetworkPolicies.ByIndex(key), "networking.k8s.io/v1", "NetworkPolicy"));
        return children;
    }

    /// <summary>The pods of a model (its selector labels).</summary>
    public IReadOnlyList<V1Pod> PodsOf(string ns, string model) => Pods.ByIndex(ObjectKey.Of(ns, model));

    /// <summary>The index of children and pods: namespace/model, from the instance label the operator puts on everything it creates.</summary>
    private static string? ModelOf<T>(T o) where T : IKubernetesObject<V1ObjectMeta> =>
        o.Metadata.Labels?.TryGetValue(ModelLabels.Instance, out var model) == true ? ObjectKey.Of(o.Metadata.NamespaceProperty, model) : null;

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
