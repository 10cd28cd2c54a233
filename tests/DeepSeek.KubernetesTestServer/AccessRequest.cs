namespace DeepSeek.KubernetesTestServer;

/// <summary>
/// A request as RBAC judges it: who (the bearer token), the API group, the resource (with its subresource),
/// the verb, the namespace (null: cluster-wide) and the object's name (for a list or watch, the name its
/// <c>metadata.name</c> field selector narrows it to; null: none).
/// </summary>
public sealed record AccessRequest(string User, string Group, string Resource, string Verb, string? Namespace, string? Name);
