using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>The autoscaler's one read of pods (an RBAC rule of its own: list pods).</summary>
public interface IModelPods
{
    /// <summary>Pods of <paramref name="ns"/> that match <paramref name="labelSelector"/>.</summary>
    Task<IReadOnlyList<V1Pod>> ListPodsAsync(string ns, string labelSelector, CancellationToken cancellationToken);
}
