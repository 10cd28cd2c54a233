namespace DeepSeek.Operator.Security;

/// <summary>One RBAC rule: verbs on a resource (optionally <c>resource/subresource</c>) of an API group ("" = core).</summary>
public sealed record PermissionRule(string ApiGroup, string Resource, IReadOnlyList<string> Verbs);
