using System.Text.Json;
using DeepSeek.Operator.Api.V1Alpha1;
using k8s;

namespace DeepSeek.Operator.Validation;

/// <summary>
/// A stored model document read into the typed model, or the fields that keep it from being read. Its
/// status is the operator's own and is read leniently: an unreadable status is treated as none.
/// </summary>
public static class ModelReader
{
    public static (V1Alpha1DeepSeekModel Model, IReadOnlyList<FieldError> Errors) Read(DeepSeekModelDocument document)
    {
        ArgumentNullException.ThrowIfNull(document);
        var model = new V1Alpha1DeepSeekModel { ApiVersion = document.ApiVersion, Kind = document.Kind, Metadata = document.Metadata, Status = ReadStatus(document) };
        if (document.Spec is null) return (model, [new FieldError("spec", "is required")]);
        var quantities = ModelValidator.ValidateQuantities(document.Spec);
        if (quantities.Count > 0) return (model, quantities);
        try
        {
            model.Spec = KubernetesJson.Deserialize<DeepSeekModelSpec>(document.Spec.ToJsonString()) ?? new DeepSeekModelSpec();
            return (model, []);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or NotSupportedException)
        {
            var field = e is JsonException { Path: { } path } ? "spec" + path.TrimStart('$') : "spec";
            return (model, [new FieldError(field, "cannot be read: " + FirstSentence(e.Message))]);
        }
    }

    private static DeepSeekModelStatus? ReadStatus(DeepSeekModelDocument document)
    {
        if (document.Status is null) return null;
        try
        {
            return KubernetesJson.Deserialize<DeepSeekModelStatus>(document.Status.ToJsonString());
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>System.Text.Json appends "Path: ... | LineNumber ... | BytePositionInLine ..." for machines; people need the first part.</summary>
    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }
}
