using System.Text.Json;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Security;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Operator.Controller;

/// <summary>
/// One kind the operator watches by its managed-by label, as controller-runtime's
/// <c>Owns(&amp;appsv1.Deployment{})</c>: where it lives in the API, how its objects are indexed by
/// model, and the RBAC verbs it needs. <see cref="WatchedKinds.All"/> is the only list of them: the
/// watches, the caches, the writes and <see cref="OperatorPermissions"/> iterate it, so a new kind is
/// one line there. <c>Owned</c>: a child the model owns (created, replaced, deleted); pods are only read.
/// </summary>
public abstract record WatchedKind(string Group, string Version, string Kind, string Plural, bool Owned, IReadOnlyList<string> Verbs)
{
    public string ApiVersion => Group.Length == 0 ? Version : Group + "/" + Version;

    public PermissionRule Rule => new(Group, Plural, Verbs);

    /// <summary>What the watch selects: the operator's own objects (its managed-by label); null: every object.</summary>
    public string? LabelSelector { get; init; } = ModelLabels.ManagedSelector;

    public abstract Type Type { get; }

    internal abstract IObjectCache NewCache();

    internal abstract IResourceWatcher Watcher(IKubernetes client, string? ns, IObjectCache cache, Action<IKubernetesObject<V1ObjectMeta>> onObject, TimeProvider time, ILogger logger);

    internal abstract Task ApplyAsync(IKubernetes client, ChildAction action, CancellationToken cancellationToken);

    /// <summary>List items come without apiVersion and kind; the reconciler matches children by kind.</summary>
    internal IKubernetesObject<V1ObjectMeta> Typed(IKubernetesObject<V1ObjectMeta> item)
    {
        item.ApiVersion = ApiVersion;
        item.Kind = Kind;
        return item;
    }
}

/// <inheritdoc cref="WatchedKind"/>
public sealed record WatchedKind<T, TList>(string Group, string Version, string Kind, string Plural, bool Owned, IReadOnlyList<string> Verbs)
    : WatchedKind(Group, Version, Kind, Plural, Owned, Verbs)
    where T : IKubernetesObject<V1ObjectMeta>
    where TList : IKubernetesObject<V1ListMeta>, IItems<T>
{
    public override Type Type => typeof(T);

    internal override IObjectCache NewCache() => new ObjectCache<T>(Owned ? WatchedKinds.ModelOf : WatchedKinds.ModelPodOf);

    internal override IResourceWatcher Watcher(IKubernetes client, string? ns, IObjectCache cache, Action<IKubernetesObject<V1ObjectMeta>> onObject, TimeProvider time, ILogger logger) =>
        new ResourceWatcher<T, TList>(client, this, ns, (ObjectCache<T>)cache, (_, item) => onObject(item), time, logger);

    internal override async Task ApplyAsync(IKubernetes client, ChildAction action, CancellationToken cancellationToken)
    {
        var item = (T)action.Object;
        var (ns, name) = (item.Metadata.NamespaceProperty, item.Metadata.Name);
        using var api = new GenericClient(client, Group, Version, Plural, disposeClient: false);
        switch (action.Kind)
        {
            case ChildActionKind.Create: await api.CreateNamespacedAsync(item, ns, cancellationToken); break;
            case ChildActionKind.Update: await api.ReplaceNamespacedAsync(item, ns, name, cancellationToken); break;
            // A delete answers with the object or with a Status, depending on the kind: read neither.
            default:
                using (await client.CustomObjects.DeleteNamespacedCustomObjectWithHttpMessagesAsync<JsonElement>(Group, Version, ns, Plural, name, cancellationToken: cancellationToken)) break;
        }
    }
}

/// <summary>
/// The table of kinds the operator watches: its models, then their children in the order they are best created, and pods.
/// Not here: the group token Secret of an expert-parallel model, which is never watched, listed, updated or
/// deleted (RBAC get and create only, <see cref="DeepSeek.Operator.Security.OperatorPermissions"/>): the reconciler
/// reads it by name and creates it once (<see cref="ModelReconciler"/>), garbage collection deletes it with the model.
/// </summary>
public static class WatchedKinds
{
    // Every model (no label): read as documents (spec as JSON), so one model whose spec cannot be read does not fail the list of all.
    public static WatchedKind<DeepSeekModelDocument, DeepSeekModelDocumentList> Models { get; } =
        new(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, V1Alpha1DeepSeekModel.KindName, V1Alpha1DeepSeekModel.Plural, Owned: false, ["get", "list", "watch"]) { LabelSelector = null };

    // Children are listed by label (no get), replaced when their hash changes (no patch).
    private static readonly string[] Manage = ["list", "watch", "create", "update", "delete"];

    // Watched into a cache: pods say why a model is not ready, and the autoscaler finds the replica leaders in them.
    public static WatchedKind<V1Pod, V1PodList> Pods { get; } = new("", "v1", "Pod", "pods", Owned: false, ["list", "watch"]);

    /// <summary>Every kind but the models, whose cache and handler differ: one cache each, indexed by model.</summary>
    public static IReadOnlyList<WatchedKind> All { get; } =
    [
        new WatchedKind<V1ConfigMap, V1ConfigMapList>("", "v1", "ConfigMap", "configmaps", Owned: true, Manage),
        new WatchedKind<V1Service, V1ServiceList>("", "v1", "Service", "services", Owned: true, Manage),
        new WatchedKind<V1Deployment, V1DeploymentList>("apps", "v1", "Deployment", "deployments", Owned: true, Manage),
        new WatchedKind<V1StatefulSet, V1StatefulSetList>("apps", "v1", "StatefulSet", "statefulsets", Owned: true, Manage),
        new WatchedKind<V1PodDisruptionBudget, V1PodDisruptionBudgetList>("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", Owned: true, Manage),
        new WatchedKind<V1NetworkPolicy, V1NetworkPolicyList>("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", Owned: true, Manage),
        Pods,
    ];

    /// <summary>The kind of a child the operator writes, by its .NET type.</summary>
    public static WatchedKind? Of(IKubernetesObject<V1ObjectMeta> item) => All.FirstOrDefault(k => k.Owned && k.Type == item.GetType());

    /// <summary>
    /// The index of children: namespace/model. A child the model controls (its controller owner reference) is
    /// the model's whatever its labels say: with the instance label edited it would drop out of the model's
    /// view, and every reconcile would try to create it again (409) instead of restoring the label. Without
    /// such a reference, the instance label the operator puts on everything it creates.
    /// </summary>
    internal static string? ModelOf<T>(T o) where T : IKubernetesObject<V1ObjectMeta> =>
        o.Metadata.OwnerReferences?.FirstOrDefault(r => r.Controller == true && r.Kind == V1Alpha1DeepSeekModel.KindName && r.ApiVersion?.StartsWith(V1Alpha1DeepSeekModel.Group + "/", StringComparison.Ordinal) == true) is { } owner
            ? ObjectKey.Of(o.Metadata.NamespaceProperty, owner.Name)
            : InstanceOf(o);

    private static string? InstanceOf<T>(T o) where T : IKubernetesObject<V1ObjectMeta> =>
        o.Metadata.Labels?.TryGetValue(ModelLabels.Instance, out var model) == true ? ObjectKey.Of(o.Metadata.NamespaceProperty, model) : null;

    /// <summary>The index of pods: only the runtime's pods (its name label) count as a model's. The gateway indexes its pod cache by it too.</summary>
    public static string? ModelPodOf<T>(T p) where T : IKubernetesObject<V1ObjectMeta> =>
        p.Metadata.Labels?.TryGetValue(ModelLabels.Name, out var app) == true && app == ModelLabels.AppName ? InstanceOf(p) : null;
}
