using System.ComponentModel.DataAnnotations;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>The checkpoint and how the runtime presents it.</summary>
public sealed class ModelSpec
{
    /// <summary>Where the Hugging Face-layout checkpoint folder comes from: exactly one of pvc, hostPath or image.</summary>
    [Required]
    public ModelSource Source { get; set; } = new();

    /// <summary>The model name clients send in OpenAI requests (default: the resource's name).</summary>
    [MaxLength(253)]
    public string? ServedName { get; set; }

    /// <summary>Data type the weights are materialised in on the GPU.</summary>
    [AllowedValues("bfloat16", "float16", "float32")]
    public string Dtype { get; set; } = "bfloat16";

    /// <summary>Longest prompt plus completion, in tokens, the runtime accepts (default: the checkpoint's).</summary>
    [Range(1, 1048576)]
    public int? MaxContextLength { get; set; }
}
