using System.Text.Json.Nodes;
using k8s.Models;

namespace DeepSeek.KubernetesTestServer;

/// <summary>
/// What a real API server does to a built-in object it stores, where a client comparing what it sent
/// with what it reads back would notice: Go's encoding/json leaves out a non-pointer <c>omitempty</c>
/// field that holds its zero value (<c>readOnly: false</c>, <c>hostPort: 0</c>, <c>subPath: ""</c>,
/// <c>args: []</c>), a null is not stored, and every <c>resource.Quantity</c> is written in canonical
/// form (<c>1024Mi</c> as <c>1Gi</c>, <c>1000m</c> as <c>1</c>). Only <c>spec</c> is rewritten, and never
/// the metadata inside it (a pod template's labels and annotations, where empty values are valid);
/// pointer fields (<c>automountServiceAccountToken</c>, <c>replicas</c>) keep an explicit zero, as they do
/// on a real server. Only the workload kinds are rewritten here, whose spec fields this server knows
/// (a Lease's <c>holderIdentity</c>, a pointer, keeps <c>""</c>); custom resources are stored as sent, as a
/// real server does with them. A Secret's <c>stringData</c> is folded into <c>data</c>, as a real server does.
/// </summary>
internal static class StoredForm
{
    private static readonly HashSet<string> Kinds = ["Pod", "Service", "Deployment", "StatefulSet", "PodDisruptionBudget", "NetworkPolicy"];

    // Non-pointer bool and integer fields of the core and apps types, tagged omitempty.
    private static readonly HashSet<string> OmittedWhenFalse = ["readOnly", "hostNetwork", "hostPID", "hostIPC", "stdin", "stdinOnce", "tty", "paused", "publishNotReadyAddresses"];
    private static readonly HashSet<string> OmittedWhenZero = ["hostPort", "nodePort", "minReadySeconds", "initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"];

    // Pointer strings, where "" is a value of its own (storageClassName "" asks for no class at all).
    private static readonly HashSet<string> KeptWhenEmpty = ["storageClassName", "volumeMode", "procMount", "ipFamilyPolicy", "internalTrafficPolicy", "loadBalancerClass", "trafficDistribution"];

    // Maps of quantities, and single quantities.
    private static readonly HashSet<string> QuantityMaps = ["limits", "requests", "capacity", "hard"];
    private static readonly HashSet<string> QuantityFields = ["sizeLimit"];

    public static void Apply(ResourceType type, JsonObject obj)
    {
        if (type is { Group: "", Kind: "Secret" }) MergeStringData(obj);
        if (type.Group is "" or "apps" or "policy" or "networking.k8s.io" && Kinds.Contains(type.Kind) && obj["spec"] is JsonObject spec) Rewrite(spec);
    }

    /// <summary>A Secret's <c>stringData</c> is write-only: the API server stores each entry base64-encoded in <c>data</c> (overriding a key of the same name) and drops it.</summary>
    private static void MergeStringData(JsonObject secret)
    {
        if (secret["stringData"] is not JsonObject strings) return;
        var data = secret["data"] as JsonObject ?? new JsonObject();
        foreach (var (key, value) in strings)
            data[key] = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes((string?)value ?? ""));
        secret["data"] = data;
        secret.Remove("stringData");
    }

    private static void Rewrite(JsonObject o)
    {
        foreach (var (key, value) in o.ToList())
        {
            switch (value)
            {
                case null:
                    o.Remove(key);
                    break;
                case JsonObject when key == "metadata":
                    break;
                case JsonObject map when QuantityMaps.Contains(key):
                    foreach (var (name, quantity) in map.ToList())
                        if (quantity is JsonValue v && v.TryGetValue<string>(out var text)) map[name] = Canonical(text);
                    if (map.Count == 0) o.Remove(key);
                    break;
                case JsonObject child:
                    Rewrite(child);
                    break;
                case JsonArray { Count: 0 }:
                    o.Remove(key);
                    break;
                case JsonArray list:
                    foreach (var item in list.OfType<JsonObject>()) Rewrite(item);
                    break;
                case JsonValue v when Omitted(key, v):
                    o.Remove(key);
                    break;
                case JsonValue v when QuantityFields.Contains(key) && v.TryGetValue<string>(out var text):
                    o[key] = Canonical(text);
                    break;
            }
        }
    }

    private static bool Omitted(string key, JsonValue value) => value.GetValueKind() switch
    {
        System.Text.Json.JsonValueKind.False => OmittedWhenFalse.Contains(key),
        System.Text.Json.JsonValueKind.Number => OmittedWhenZero.Contains(key) && value.ToJsonString() == "0",
        System.Text.Json.JsonValueKind.String => !KeptWhenEmpty.Contains(key) && value.GetValue<string>().Length == 0,
        _ => false,
    };

    private static string Canonical(string quantity)
    {
        try
        {
            return new ResourceQuantity(quantity).CanonicalizeString();
        }
        catch (FormatException)
        {
            // A real server refuses it (422); this one stores it as sent and leaves the refusal to validation tests.
            return quantity;
        }
    }
}
