using DeepSeek.Operator.Crd;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>Where the weights are mounted from; exactly one member is set.</summary>
[CelRule(
    "[has(self.pvc), has(self.hostPath), has(self.image)].filter(x, x).size() == 1",
    "model.source and adapters[*].source must each set exactly one of pvc, hostPath or image")]
public sealed class ModelSource
{
    /// <summary>A PersistentVolumeClaim holding the checkpoint, mounted read-only.</summary>
    public PvcModelSource? Pvc { get; set; }

    /// <summary>A directory on the node holding the checkpoint (pre-staged weights).</summary>
    public HostPathModelSource? HostPath { get; set; }

    /// <summary>An OCI image whose filesystem holds the checkpoint, mounted as an image volume.</summary>
    public ImageModelSource? Image { get; set; }
}
