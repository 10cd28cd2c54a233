using System.Collections.Frozen;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>
/// How a value the operator sends compares with the value the API server stores for it. The server
/// writes objects with Go's encoding/json: a non-pointer <c>omitempty</c> field holding its zero value
/// (<c>readOnly: false</c>, <c>hostPort: 0</c>, <c>""</c>, an empty list or map) is left out, and every
/// <c>resource.Quantity</c> comes back in canonical form (<c>1024Mi</c> as <c>1Gi</c>, <c>1000m</c> as
/// <c>1</c>). Both are the server's rewriting, not a change by anyone, and comparing them as sent made
/// every reconcile replace the Deployment as "drift" (issue 28).
/// </summary>
public static class StoredValues
{
    /// <summary>
    /// Pointer fields (<c>*bool</c>, <c>*int32</c> in the Go types) that the server keeps when they hold zero.
    /// A desired <c>false</c> or <c>0</c> there that the stored object lacks was removed by someone (for
    /// <c>automountServiceAccountToken</c> that hands the pod an API token): drift, not the server's omission.
    /// </summary>
    private static readonly FrozenSet<string> KeptZeros = FrozenSet.Create(StringComparer.Ordinal,
        "automountServiceAccountToken", "enableServiceLinks", "allowPrivilegeEscalation", "privileged", "readOnlyRootFilesystem",
        "runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "hostUsers", "shareProcessNamespace", "setHostnameAsFQDN", "optional",
        "replicas", "revisionHistoryLimit", "progressDeadlineSeconds", "terminationGracePeriodSeconds", "activeDeadlineSeconds",
        "defaultMode", "mode", "partition", "maxUnavailable", "maxSurge", "minAvailable", "storageClassName");

    // Maps whose values are quantities, and fields that are one.
    private static readonly FrozenSet<string> QuantityMaps = FrozenSet.Create(StringComparer.Ordinal, "limits", "requests", "capacity", "hard");
    private static readonly FrozenSet<string> QuantityFields = FrozenSet.Create(StringComparer.Ordinal, "sizeLimit");

    /// <summary>
    /// Whether <paramref name="want"/>, sent in <paramref name="field"/>, matches the field's absence from the
    /// stored object: only a zero value, and only where the server leaves zero out. One direction only: a
    /// value the operator does not send is never compared.
    /// </summary>
    public static bool MatchesAbsent(string? field, JsonNode want) => want switch
    {
        JsonObject o => o.Count == 0,
        JsonArray a => a.Count == 0,
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => v.GetValue<string>().Length == 0,
            JsonValueKind.False => field is null || !KeptZeros.Contains(field),
            JsonValueKind.Number => v.ToJsonString() == "0" && (field is null || !KeptZeros.Contains(field)),
            _ => false,
        },
        _ => false,
    };

    /// <summary>Whether two scalars are the same value: quantities by value, everything else as written.</summary>
    /// <param name="field">The key the value sits under.</param>
    /// <param name="parent">The key of the object holding <paramref name="field"/> (a map of quantities is keyed by resource name).</param>
    /// <param name="want">What the operator sends.</param>
    /// <param name="have">What is stored.</param>
    public static bool Same(string? field, string? parent, JsonValue want, JsonValue have)
    {
        if (want.ToJsonString() == have.ToJsonString()) return true;
        var quantity = (field is not null && QuantityFields.Contains(field)) || (parent is not null && QuantityMaps.Contains(parent));
        return quantity && Canonical(want) is { } a && Canonical(have) is { } b && a == b;
    }

    private static string? Canonical(JsonValue value)
    {
        var text = value.GetValueKind() switch
        {
            JsonValueKind.String => value.GetValue<string>(),
            JsonValueKind.Number => value.ToJsonString(),
            _ => null,
        };
        if (text is null) return null;
        try
        {
            return new ResourceQuantity(text).CanonicalizeString();
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
