using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>
/// A DeepSeek mixture-of-experts model served on the cluster: where its weights are, how its pods are
/// shaped and spread over GPUs, and how many replicas serve it.
/// </summary>
public sealed class V1Alpha1DeepSeekModel : IKubernetesObject<V1ObjectMeta>
{
    public const string Group = "serving.deepseek-operator.io";
    public const string Version = "v1alpha1";
    public const string KindName = "DeepSeekModel";
    public const string Plural = "deepseekmodels";
    public const string ShortName = "dsm";
    public const string GroupVersion = Group + "/" + Version;

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = GroupVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KindName;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    /// <summary>The model the user asks for.</summary>
    [JsonPropertyName("spec")]
    public DeepSeekModelSpec Spec { get; set; } = new();

    /// <summary>What the operator observed and did, written by the operator only.</summary>
    [JsonPropertyName("status")]
    public DeepSeekModelStatus? Status { get; set; }
}
