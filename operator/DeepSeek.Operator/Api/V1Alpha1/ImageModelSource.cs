using System.ComponentModel.DataAnnotations;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>A checkpoint shipped as an OCI image (Kubernetes image volume).</summary>
public sealed class ImageModelSource
{
    /// <summary>Image reference, e.g. registry.example.com/models/deepseek-v3:fp8.</summary>
    [Required]
    [MinLength(1)]
    public string Reference { get; set; } = "";

    /// <summary>When the kubelet pulls the image.</summary>
    [AllowedValues("Always", "IfNotPresent", "Never")]
    public string PullPolicy { get; set; } = "IfNotPresent";
}
