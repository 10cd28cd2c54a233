using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>The autoscaler's read of pods (from the watched pod cache, indexed by model: no request).</summary>
public interface IModelPods
{
    /// <summary>The model's pods.</summary>
    IReadOnlyList<V1Pod> Pods(string ns, string model);
}
