using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Desired;

/// <summary>
/// Every object a model should own, in the order they are best created (settings before the pods that read them).
/// <paramref name="GroupToken"/>: the token Secret of an expert-parallel model, apart from <paramref name="Objects"/>
/// because it is never compared, replaced or deleted: created once if missing, read by name otherwise.
/// </summary>
public sealed record DesiredState(IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Objects, V1Secret? GroupToken = null)
{
    public IEnumerable<T> OfType<T>() => Objects.OfType<T>();
}
