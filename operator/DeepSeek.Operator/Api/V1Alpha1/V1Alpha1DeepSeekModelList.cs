using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>The list shape the API server returns for <c>deepseekmodels</c>.</summary>
public sealed class V1Alpha1DeepSeekModelList : IKubernetesObject<V1ListMeta>, IItems<V1Alpha1DeepSeekModel>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = V1Alpha1DeepSeekModel.GroupVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = V1Alpha1DeepSeekModel.KindName + "List";

    [JsonPropertyName("metadata")]
    public V1ListMeta Metadata { get; set; } = new();

    [JsonPropertyName("items")]
    public IList<V1Alpha1DeepSeekModel> Items { get; set; } = [];
}
