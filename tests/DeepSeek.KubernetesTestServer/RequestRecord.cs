namespace DeepSeek.KubernetesTestServer;

/// <summary>One request as the server saw it: who (bearer token), the RBAC verb, what, and the answer.</summary>
public sealed record RequestRecord(string User, string Verb, string Group, string Resource, string? Namespace, string? Name, int Status, DateTimeOffset At);
