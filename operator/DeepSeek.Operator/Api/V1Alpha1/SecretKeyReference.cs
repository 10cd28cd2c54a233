using System.ComponentModel.DataAnnotations;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>A key of a Secret in the model's namespace.</summary>
public sealed class SecretKeyReference
{
    /// <summary>Name of the Secret.</summary>
    [Required]
    [MinLength(1)]
    public string Name { get; set; } = "";

    /// <summary>Key inside the Secret (default: apiKeySecretRef reads api-key, download.tokenSecretRef reads token).</summary>
    [MinLength(1)]
    public string? Key { get; set; }
}
