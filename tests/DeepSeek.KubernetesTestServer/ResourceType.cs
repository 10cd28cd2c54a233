namespace DeepSeek.KubernetesTestServer;

/// <summary>A kind the server serves: where it lives in the REST path and which subresources it has.</summary>
public sealed record ResourceType(string Group, string Version, string Kind, string Plural, bool Namespaced = true, bool HasStatus = true, bool HasScale = false)
{
    public string GroupVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    public static IReadOnlyList<ResourceType> BuiltIn { get; } =
    [
        new("", "v1", "ConfigMap", "configmaps", HasStatus: false),
        new("", "v1", "Service", "services"),
        new("", "v1", "Pod", "pods"),
        new("", "v1", "Event", "events", HasStatus: false),
        new("", "v1", "Secret", "secrets", HasStatus: false),
        new("apps", "v1", "Deployment", "deployments", HasScale: true),
        new("apps", "v1", "StatefulSet", "statefulsets", HasScale: true),
        new("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        new("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", HasStatus: false),
        new("coordination.k8s.io", "v1", "Lease", "leases", HasStatus: false),
    ];
}
