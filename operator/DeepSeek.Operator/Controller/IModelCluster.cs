using DeepSeek.Operator.Api.V1Alpha1;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>
/// The reconciler's view of the cluster: reads from the watch-fed caches (no request), writes to the
/// API server (each call one RBAC rule in OperatorPermissions).
/// </summary>
public interface IModelCluster : IModelPods
{
    DeepSeekModelDocument? GetModel(string ns, string name);

    /// <summary>Children of every kind the operator creates that carry the model's labels.</summary>
    IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Children(string ns, string model);

    /// <summary>Warning events about one workload (why its pods are not created), newest first: a request, made only when pods are missing.</summary>
    Task<IReadOnlyList<Corev1Event>> WarningsAboutAsync(IKubernetesObject<V1ObjectMeta> workload, CancellationToken cancellationToken);

    /// <summary>Replaces the model's status, refused (409) when <paramref name="model"/>'s resourceVersion is stale.</summary>
    Task WriteStatusAsync(V1ObjectMeta model, DeepSeekModelStatus status, CancellationToken cancellationToken);

    Task ApplyAsync(ChildAction action, CancellationToken cancellationToken);

    /// <summary>A Secret read by name (RBAC get; never listed or watched); null when there is none.</summary>
    Task<V1Secret?> ReadSecretAsync(string ns, string name, CancellationToken cancellationToken);

    /// <summary>Creates a Secret (RBAC create); refused (409) when one of that name exists.</summary>
    Task CreateSecretAsync(V1Secret secret, CancellationToken cancellationToken);

    Task RecordEventAsync(V1ObjectMeta model, string type, string reason, string message, CancellationToken cancellationToken);
}
