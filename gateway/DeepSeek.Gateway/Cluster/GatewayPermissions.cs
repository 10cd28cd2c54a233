using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Security;

namespace DeepSeek.Gateway.Cluster;

/// <summary>
/// Every Kubernetes API call the gateway makes in a cluster, as RBAC rules: the chart's gateway Role and
/// ClusterRole are checked against this list (tests/DeepSeek.Chart.Tests), and the gateway's tests run it
/// against a test API server that refuses anything else.
/// </summary>
internal static class GatewayPermissions
{
    public static IReadOnlyList<PermissionRule> Rules { get; } =
    [
        // The models and their runtime pods, read through list and watch only (ModelDiscovery).
        new(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Plural, ["list", "watch"]),
        new("", "pods", ["list", "watch"]),
        // Scale from zero: spec.replicas 0 -> 1 through the scale subresource, nothing else of the model.
        new(V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Plural + "/scale", ["patch"]),
        // The key Secrets, each listed and watched by name (a metadata.name field selector), which is what
        // RBAC's resourceNames lets the chart grant: no other Secret is readable.
        new("", "secrets", ["list", "watch"]),
    ];

    public static bool Allows(string apiGroup, string resource, string verb) =>
        Rules.Any(r => r.ApiGroup == apiGroup && r.Resource == resource && r.Verbs.Contains(verb));
}
