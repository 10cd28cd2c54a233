namespace DeepSeek.Operator.Controller;

/// <summary>The work queue's key of a namespaced object: <c>namespace/name</c>.</summary>
public static class ObjectKey
{
    public static string Of(string? ns, string name) => $"{ns ?? "default"}/{name}";

    public static (string Namespace, string Name) Split(string key)
    {
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? ("default", key) : (key[..slash], key[(slash + 1)..]);
    }
}
