using DeepSeek.Operator.Controller;

namespace DeepSeek.Operator.Security;

/// <summary>
/// Every Kubernetes API call the operator makes, as RBAC rules. The single source of truth: the
/// test API server refuses (403) any request these rules do not allow, and the Helm chart's
/// ClusterRole/Role is checked against this list, so a new call without a new right fails a test.
/// </summary>
public static class OperatorPermissions
{
    public static IReadOnlyList<PermissionRule> Rules { get; } =
    [
        // One rule per kind the operator watches, and the models' status.
        WatchedKinds.Models.Rule,
        new(WatchedKinds.Models.Group, WatchedKinds.Models.Plural + "/status", ["update"]),
        .. WatchedKinds.All.Select(k => k.Rule),
        // The group token Secret of an expert-parallel model: read by name (never listed or watched, so no
        // other Secret is ever read) and created once, immutable, with the model as owner (garbage collection
        // deletes it: no delete). Never update, patch or delete: a token is not changed under running ranks.
        new("", "secrets", ["get", "create"]),
        // Events are aggregated (a repeat raises the count: patch); a StatefulSet short of pods has its
        // warnings read (list, by involvedObject.uid) to say why.
        new("", "events", ["create", "patch", "list"]),
        new("coordination.k8s.io", "leases", ["get", "create", "update"]),
    ];

    /// <summary>Whether the rules allow <paramref name="verb"/> on <paramref name="resource"/> of <paramref name="apiGroup"/>.</summary>
    public static bool Allows(string apiGroup, string resource, string verb) =>
        Rules.Any(r => r.ApiGroup == apiGroup && r.Resource == resource && r.Verbs.Contains(verb));
}

/// <summary>One RBAC rule: verbs on a resource (optionally <c>resource/subresource</c>) of an API group ("" = core).</summary>
public sealed record PermissionRule(string ApiGroup, string Resource, IReadOnlyList<string> Verbs);
