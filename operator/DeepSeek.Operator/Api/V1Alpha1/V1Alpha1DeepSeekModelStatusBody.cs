using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>The body of a status-subresource write: identity, the resourceVersion read, and the status (the server keeps the stored spec).</summary>
public sealed class V1Alpha1DeepSeekModelStatusBody : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = V1Alpha1DeepSeekModel.GroupVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = V1Alpha1DeepSeekModel.KindName;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("status")]
    public DeepSeekModelStatus? Status { get; set; }
}
