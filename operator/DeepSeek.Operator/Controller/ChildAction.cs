using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>
/// One change to a model's children: create, update (replace) or delete. <paramref name="Drift"/>: an
/// update that restores fields someone else changed (the spec the operator last wrote is unchanged).
/// </summary>
public sealed record ChildAction(ChildActionKind Kind, IKubernetesObject<V1ObjectMeta> Object, bool Drift = false);

public enum ChildActionKind
{
    Create,
    Update,
    Delete,
}
