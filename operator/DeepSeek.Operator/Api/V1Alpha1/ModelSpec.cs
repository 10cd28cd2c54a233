using System.ComponentModel.DataAnnotations;
using DeepSeek.Operator.Crd;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>The checkpoint and how the runtime presents it.</summary>
[CelRule("!has(self.quantization) || self.quantization != 'int4' || !has(self.dtype) || self.dtype == 'bfloat16'",
    "model.quantization int4 keeps weights in 4 bits and computes in bfloat16: set model.dtype to bfloat16 (or leave it unset), or model.quantization to none",
    FieldPath = ".quantization")]
public sealed class ModelSpec
{
    /// <summary>Where the Hugging Face-layout checkpoint folder comes from: exactly one of pvc, hostPath or image. Required unless runtime.gpusPerPod is 0: a CPU model without a source serves the runtime image's embedded tiny demo model.</summary>
    public ModelSource? Source { get; set; }

    /// <summary>The model name clients send in OpenAI requests (default: the resource's name).</summary>
    [MaxLength(253)]
    public string? ServedName { get; set; }

    /// <summary>Data type the weights are materialised in on the device, GPU or CPU (and activations computed in).</summary>
    [AllowedValues("bfloat16", "float16", "float32")]
    public string Dtype { get; set; } = "bfloat16";

    /// <summary>Weight quantisation applied at load: none keeps the checkpoint's weights in dtype; int4 quantises them to 4 bits (group size 128) and computes in bfloat16; fp8 keeps them in FP8 e4m3 with 128×128 block scales as DeepSeek-V3 publishes them (a bf16 checkpoint is quantised at load), one byte per weight.</summary>
    [AllowedValues("none", "int4", "fp8")]
    public string Quantization { get; set; } = "none";

    /// <summary>Longest prompt plus completion, in tokens, the runtime accepts (default: the checkpoint's).</summary>
    [Range(1, 1048576)]
    public int? MaxContextLength { get; set; }
}
