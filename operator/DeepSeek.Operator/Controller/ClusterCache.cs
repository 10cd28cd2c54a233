using DeepSeek.Operator.Api.V1Alpha1;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>The watch-fed stores the controller reads: models, and one per kind of <see cref="WatchedKinds.All"/>.</summary>
public sealed class ClusterCache
{
    private readonly Dictionary<WatchedKind, IObjectCache> kinds = WatchedKinds.All.ToDictionary(k => k, k => k.NewCache());

    public ObjectCache<DeepSeekModelDocument> Models { get; } = new();

    public IObjectCache Of(WatchedKind kind) => kinds[kind];

    /// <summary>Children of every owned kind that carry the model's instance label, typed (list items come without kind).</summary>
    public IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Children(string ns, string model) =>
        [.. WatchedKinds.All.Where(k => k.Owned).SelectMany(k => kinds[k].ByIndex(ObjectKey.Of(ns, model)).Select(k.Typed))];

    /// <summary>The pods of a model (its selector labels).</summary>
    public IReadOnlyList<V1Pod> PodsOf(string ns, string model) => ((ObjectCache<V1Pod>)kinds[WatchedKinds.Pods]).ByIndex(ObjectKey.Of(ns, model));
}
