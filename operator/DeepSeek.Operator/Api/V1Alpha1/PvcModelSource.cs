using System.ComponentModel.DataAnnotations;
using DeepSeek.Operator.Crd;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>A checkpoint on a PersistentVolumeClaim.</summary>
[CelRule("!has(self.path) || (!self.path.startsWith('/') && !self.path.contains('..'))",
    "model.source.pvc.path and adapters[*].source.pvc.path must be a relative path inside the claim, without '..'", FieldPath = ".path")]
public sealed class PvcModelSource
{
    /// <summary>Name of the PersistentVolumeClaim in the model's namespace.</summary>
    [Required]
    [MinLength(1)]
    public string ClaimName { get; set; } = "";

    /// <summary>Folder of the checkpoint inside the claim, relative to its root (empty: the root).</summary>
    [MaxLength(4096)]
    public string Path { get; set; } = "";

    /// <summary>Download the checkpoint from a hub into path before the runtime starts (the claim must then be writable).</summary>
    public ModelDownload? Download { get; set; }
}
