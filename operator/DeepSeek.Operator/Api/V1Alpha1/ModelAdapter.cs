using System.ComponentModel.DataAnnotations;
using DeepSeek.Operator.Crd;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>A LoRA adapter served beside the model (a PEFT folder: adapter_config.json, adapter_model.safetensors); requests pick it by its name as their model.</summary>
public sealed class ModelAdapter
{
    /// <summary>The model name clients send to use this adapter; also its folder under /adapters in the pod.</summary>
    [Required]
    [MinLength(1)]
    [MaxLength(63)]
    [CelRule("self.matches('" + NamePattern + "')",
        "adapters[*].name must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit (it names the adapter's mount and what clients send as model)")]
    public string Name { get; set; } = "";

    /// <summary>Where the adapter folder comes from: exactly one of pvc (download included), hostPath or image, as model.source.</summary>
    [Required]
    public ModelSource Source { get; set; } = new();

    /// <summary>What an adapter's name may be: a DNS label, so that it is a path name as it is.</summary>
    public const string NamePattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
}
