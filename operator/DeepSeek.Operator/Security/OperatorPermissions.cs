namespace DeepSeek.Operator.Security;

/// <summary>
/// Every Kubernetes API call the operator makes, as RBAC rules. The single source of truth: the
/// test API server refuses (403) any request these rules do not allow, and the Helm chart's
/// ClusterRole/Role is checked against this list, so a new call without a new right fails a test.
/// </summary>
public static class OperatorPermissions
{
    private static readonly string[] Read = ["get", "list", "watch"];
    // Children are listed by label (no get), replaced when their hash changes (no patch).
    private static readonly string[] Manage = ["list", "watch", "create", "update", "delete"];

    public static IReadOnlyList<PermissionRule> Rules { get; } =
    [
        new("serving.deepseek-operator.io", "deepseekmodels", Read),
        new("serving.deepseek-operator.io", "deepseekmodels/status", ["update"]),
        new("apps", "deployments", Manage),
        new("apps", "statefulsets", Manage),
        new("", "services", Manage),
        new("", "configmaps", Manage),
        new("policy", "poddisruptionbudgets", Manage),
        // The group token of each expert-parallel model (watched by the operator's label only) and its NetworkPolicy.
        new("", "secrets", Manage),
        new("networking.k8s.io", "networkpolicies", Manage),
        // Events are aggregated (a repeat raises the count: patch); a StatefulSet short of pods has its
        // warnings read (list, by involvedObject.uid) to say why.
        new("", "events", ["create", "patch", "list"]),
        // Watched into a cache: pods say why a model is not ready, and the autoscaler finds the replica leaders in them.
        new("", "pods", ["list", "watch"]),
        new("coordination.k8s.io", "leases", ["get", "create", "update"]),
    ];

    /// <summary>Whether the rules allow <paramref name="verb"/> on <paramref name="resource"/> of <paramref name="apiGroup"/>.</summary>
    public static bool Allows(string apiGroup, string resource, string verb) =>
        Rules.Any(r => r.ApiGroup == apiGroup && r.Resource == resource && r.Verbs.Contains(verb));
}
