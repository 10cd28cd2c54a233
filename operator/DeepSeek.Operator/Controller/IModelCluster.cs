using DeepSeek.Operator.Api.V1Alpha1;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>The reconciler's view of the API server: the few calls it makes, each one RBAC rule in OperatorPermissions.</summary>
public interface IModelCluster
{
    Task<V1Alpha1DeepSeekModel?> GetModelAsync(string ns, string name, CancellationToken cancellationToken);

    Task WriteStatusAsync(V1Alpha1DeepSeekModel model, DeepSeekModelStatus status, CancellationToken cancellationToken);

    /// <summary>Children of every kind the operator creates that carry the model's labels.</summary>
    Task<IReadOnlyList<IKubernetesObject<V1ObjectMeta>>> ListChildrenAsync(string ns, string model, CancellationToken cancellationToken);

    Task ApplyAsync(ChildAction action, CancellationToken cancellationToken);

    Task RecordEventAsync(V1Alpha1DeepSeekModel model, string type, string reason, string message, CancellationToken cancellationToken);
}
