using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Desired;

/// <summary>Every object a model should own, in the order they are best created (settings before the pods that read them).</summary>
public sealed record DesiredState(IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Objects)
{
    public IEnumerable<T> OfType<T>() => Objects.OfType<T>();
}
