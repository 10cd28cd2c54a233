using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>The watch-fed stores the controller reads: models, every kind of child, and the models' pods.</summary>
public sealed class ClusterCache
{
    public ObjectCache<DeepSeekModelDocument> Models { get; } = new();
    public ObjectCache<V1ConfigMap> ConfigMaps { get; } = new();
    public ObjectCache<V1Service> Services { get; } = new();
    public ObjectCache<V1Deployment> Deployments { get; } = new();
    public ObjectCache<V1StatefulSet> StatefulSets { get; } = new();
    public ObjectCache<V1PodDisruptionBudget> DisruptionBudgets { get; } = new();
    public ObjectCache<V1Pod> Pods { get; } = new();

    /// <summary>Children of every kind that carry the model's instance label, typed (list items come without kind).</summary>
    public IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Children(string ns, string model)
    {
        bool Mine(IKubernetesObject<V1ObjectMeta> o) => o.Metadata.Labels is { } labels && labels.TryGetValue(ModelLabels.Instance, out var instance) && instance == model;
        var children = new List<IKubernetesObject<V1ObjectMeta>>();
        children.AddRange(Typed(ConfigMaps.List(ns, Mine), "v1", "ConfigMap"));
        children.AddRange(Typed(Services.List(ns, Mine), "v1", "Service"));
        children.AddRange(Typed(Deployments.List(ns, Mine), "apps/v1", "Deployment"));
        children.AddRange(Typed(StatefulSets.List(ns, Mine), "apps/v1", "StatefulSet"));
        children.AddRange(Typed(DisruptionBudgets.List(ns, Mine), "policy/v1", "PodDisruptionBudget"));
        return children;
    }

    /// <summary>The pods of a model (its selector labels).</summary>
    public IReadOnlyList<V1Pod> PodsOf(string ns, string model) =>
        Pods.List(ns, p => p.Metadata.Labels is { } labels && labels.TryGetValue(ModelLabels.Instance, out var instance) && instance == model
            && labels.TryGetValue(ModelLabels.Name, out var app) && app == ModelLabels.AppName);

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
