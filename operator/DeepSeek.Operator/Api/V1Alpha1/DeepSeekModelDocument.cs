using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>
/// A DeepSeekModel as stored, with spec and status left as JSON: the watch reads models in this form so
/// that one object whose spec cannot be read (a quantity that does not parse) never fails a list or a
/// watch; <see cref="Validation.ModelReader"/> turns it into a <see cref="V1Alpha1DeepSeekModel"/> or
/// the fields that are wrong.
/// </summary>
public sealed class DeepSeekModelDocument : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = V1Alpha1DeepSeekModel.GroupVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = V1Alpha1DeepSeekModel.KindName;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public JsonNode? Spec { get; set; }

    [JsonPropertyName("status")]
    public JsonNode? Status { get; set; }
}

/// <summary>The list shape of <see cref="DeepSeekModelDocument"/>.</summary>
public sealed class DeepSeekModelDocumentList : IKubernetesObject<V1ListMeta>, IItems<DeepSeekModelDocument>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = V1Alpha1DeepSeekModel.GroupVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = V1Alpha1DeepSeekModel.KindName + "List";

    [JsonPropertyName("metadata")]
    public V1ListMeta Metadata { get; set; } = new();

    [JsonPropertyName("items")]
    public IList<DeepSeekModelDocument> Items { get; set; } = [];
}
