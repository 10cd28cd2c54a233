using DeepSeek.Operator.Desired;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>
/// The difference between what a model should own and what it owns: a pure function. Objects are
/// matched by kind and name; an existing object is replaced only when the hash of its desired form
/// changed (what the API server defaults or other controllers add is not a reason to write).
/// </summary>
public static class ChildPlan
{
    public static IReadOnlyList<ChildAction> Compute(IReadOnlyList<IKubernetesObject<V1ObjectMeta>> desired, IReadOnlyList<IKubernetesObject<V1ObjectMeta>> existing)
    {
        var byKey = existing.ToDictionary(Key);
        var actions = new List<ChildAction>();
        foreach (var item in desired)
        {
            if (!byKey.Remove(Key(item), out var current))
            {
                actions.Add(new ChildAction(ChildActionKind.Create, item));
                continue;
            }
            if (Hash(current) == Hash(item)) continue;
            item.Metadata.ResourceVersion = current.Metadata.ResourceVersion;
            CarryOver(current, item);
            actions.Add(new ChildAction(ChildActionKind.Update, item));
        }
        actions.AddRange(byKey.Values.Select(e => new ChildAction(ChildActionKind.Delete, e)));
        return actions;
    }

    public static string Key(IKubernetesObject<V1ObjectMeta> item) => item.Kind + "/" + item.Metadata.Name;

    private static string? Hash(IKubernetesObject<V1ObjectMeta> item) => item.Metadata.Annotations is { } a && a.TryGetValue(ModelLabels.SpecHash, out var hash) ? hash : null;

    /// <summary>Fields the API server assigns and will not let an update clear.</summary>
    private static void CarryOver(IKubernetesObject<V1ObjectMeta> current, IKubernetesObject<V1ObjectMeta> desired)
    {
        if (current is V1Service { Spec: { } was } && desired is V1Service { Spec: { } will } && will.ClusterIP is null)
        {
            will.ClusterIP = was.ClusterIP;
            will.ClusterIPs = was.ClusterIPs;
        }
    }
}
