using System.ComponentModel.DataAnnotations;
using DeepSeek.Operator.Crd;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>A checkpoint in a directory of the node.</summary>
[CelRule("has(self.path) && self.path.startsWith('/')", "model.source.hostPath.path and adapters[*].source.hostPath.path must be an absolute path", FieldPath = ".path")]
public sealed class HostPathModelSource
{
    /// <summary>Absolute path of the checkpoint folder on the node.</summary>
    [Required]
    [MinLength(1)]
    [MaxLength(4096)]
    public string Path { get; set; } = "";
}
