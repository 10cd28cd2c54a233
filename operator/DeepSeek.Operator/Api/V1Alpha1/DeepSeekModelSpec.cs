using System.ComponentModel.DataAnnotations;
using DeepSeek.Operator.Crd;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>The desired state of a DeepSeekModel.</summary>
[CelRule(
    "!has(self.parallelism) || !has(self.parallelism.expertParallelSize) || !has(self.parallelism.podsPerReplica) || (self.parallelism.expertParallelSize % self.parallelism.podsPerReplica == 0 && (has(self.runtime) && has(self.runtime.gpusPerPod) ? self.runtime.gpusPerPod : 1) % (self.parallelism.expertParallelSize / self.parallelism.podsPerReplica) == 0)",
    "parallelism.expertParallelSize must be a multiple of parallelism.podsPerReplica, and the ranks per pod (expertParallelSize / podsPerReplica) must divide runtime.gpusPerPod",
    FieldPath = ".parallelism.expertParallelSize")]
public sealed class DeepSeekModelSpec
{
    /// <summary>The checkpoint to serve and how to present it.</summary>
    [Required]
    public ModelSpec Model { get; set; } = new();

    /// <summary>The runtime container: image, GPUs per pod, scheduling.</summary>
    public RuntimeSpec Runtime { get; set; } = new();

    /// <summary>How one replica is spread over pods and expert-parallel ranks.</summary>
    public ParallelismSpec Parallelism { get; set; } = new();

    /// <summary>Settings of the inference engine inside each pod.</summary>
    public EngineSpec Engine { get; set; } = new();

    /// <summary>Number of replicas (replica groups when podsPerReplica > 1) while built-in autoscaling is off; the target of the scale subresource.</summary>
    [Range(0, 1000)]
    public int Replicas { get; set; } = 1;

    /// <summary>Built-in autoscaling on queue depth.</summary>
    public AutoscalingSpec Autoscaling { get; set; } = new();
}
