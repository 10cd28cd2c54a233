using System.Text.Json.Nodes;

namespace DeepSeek.KubernetesTestServer;

/// <summary>Kubernetes <c>Status</c> bodies for the answers the server gives.</summary>
public static class Errors
{
    public static (int, JsonObject) NotFound(ResourceType type, string name) =>
        Failure(404, "NotFound", $"{type.Plural}.{type.Group} \"{name}\" not found", type, name);

    public static (int, JsonObject) AlreadyExists(ResourceType type, string name) =>
        Failure(409, "AlreadyExists", $"{type.Plural}.{type.Group} \"{name}\" already exists", type, name);

    public static (int, JsonObject) Conflict(ResourceType type, string name) =>
        Failure(409, "Conflict", $"Operation cannot be fulfilled on {type.Plural}.{type.Group} \"{name}\": the object has been modified; please apply your changes to the latest version and try again", type, name);

    public static (int, JsonObject) Invalid(string message) => Failure(422, "Invalid", message, null, null);

    public static (int, JsonObject) Forbidden(string user, string verb, string group, string resource, string? ns) =>
        Failure(403, "Forbidden", $"{resource}{(group.Length > 0 ? "." + group : "")} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\"{(ns is null ? " at the cluster scope" : $" in the namespace \"{ns}\"")}", null, null);

    public static (int, JsonObject) Gone(string message) => Failure(410, "Expired", message, null, null);

    public static (int, JsonObject) Injected(int code) => Failure(code, code == 409 ? "Conflict" : "InternalError", $"injected fault {code}", null, null);

    public static JsonObject Success(ResourceType type, string name) => new()
    {
        ["kind"] = "Status",
        ["apiVersion"] = "v1",
        ["metadata"] = new JsonObject(),
        ["status"] = "Success",
        ["details"] = new JsonObject { ["name"] = name, ["group"] = type.Group, ["kind"] = type.Plural },
    };

    public static (int, JsonObject) Failure(int code, string reason, string message, ResourceType? type, string? name)
    {
        var status = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
            ["reason"] = reason,
            ["code"] = code,
        };
        if (type is not null) status["details"] = new JsonObject { ["name"] = name, ["group"] = type.Group, ["kind"] = type.Plural };
        return (code, status);
    }
}
