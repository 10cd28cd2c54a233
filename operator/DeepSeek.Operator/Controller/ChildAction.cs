using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>One change to a model's children: create, update (replace) or delete.</summary>
public sealed record ChildAction(ChildActionKind Kind, IKubernetesObject<V1ObjectMeta> Object);
