using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>The autoscaler's read of pods (from the watched pod cache: no request).</summary>
public interface IModelPods
{
    /// <summary>Pods of <paramref name="ns"/> that match <paramref name="labelSelector"/>.</summary>
    Task<IReadOnlyList<V1Pod>> ListPodsAsync(string ns, string labelSelector, CancellationToken cancellationToken);
}
