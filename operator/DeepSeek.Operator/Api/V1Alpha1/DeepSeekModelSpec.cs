using System.ComponentModel.DataAnnotations;
using DeepSeek.Operator.Crd;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>The desired state of a DeepSeekModel.</summary>
[CelRule(
    "!has(self.parallelism) || !has(self.parallelism.expertParallelSize) || !has(self.parallelism.podsPerReplica) || (self.parallelism.expertParallelSize % self.parallelism.podsPerReplica == 0 && (has(self.runtime) && has(self.runtime.gpusPerPod) ? self.runtime.gpusPerPod : 1) % (self.parallelism.expertParallelSize / self.parallelism.podsPerReplica) == 0)",
    ExpertParallelMessage,
    FieldPath = ".parallelism.expertParallelSize")]
// 0 divides by every rank count, so the rule above admits any size with 0 GPUs. A CPU pod runs one rank, so
// its replica has exactly podsPerReplica: more ranks in one pod would split the same cores and memory between
// processes, with nothing to gain.
[CelRule(
    "!has(self.runtime) || !has(self.runtime.gpusPerPod) || self.runtime.gpusPerPod != 0 || !has(self.parallelism) || !has(self.parallelism.expertParallelSize) || self.parallelism.expertParallelSize == (has(self.parallelism.podsPerReplica) ? self.parallelism.podsPerReplica : 1)",
    CpuRanksMessage,
    FieldPath = ".parallelism.expertParallelSize")]
// With data-parallel attention every rank is a Service endpoint on the pod's one HTTP port: one rank per pod.
[CelRule(
    "!has(self.parallelism) || !has(self.parallelism.dataParallelAttention) || !self.parallelism.dataParallelAttention || (has(self.parallelism.expertParallelSize) ? self.parallelism.expertParallelSize == (has(self.parallelism.podsPerReplica) ? self.parallelism.podsPerReplica : 1) : (!has(self.runtime) || !has(self.runtime.gpusPerPod) || self.runtime.gpusPerPod <= 1))",
    DataParallelRanksMessage,
    FieldPath = ".parallelism.dataParallelAttention")]
// The CPU runtime image carries a tiny demo checkpoint and serves it when given no model folder: a model
// with 0 GPUs may leave the source out to run it (trying the operator on a cluster without GPUs).
[CelRule(
    "has(self.model.source) || (has(self.runtime) && has(self.runtime.gpusPerPod) && self.runtime.gpusPerPod == 0)",
    SourceMessage,
    FieldPath = ".model.source")]
public sealed class DeepSeekModelSpec
{
    /// <summary>Messages of the rules above, which ModelValidator reports for the same mistakes.</summary>
    public const string ExpertParallelMessage = "parallelism.expertParallelSize must be a multiple of parallelism.podsPerReplica, and the ranks per pod (expertParallelSize / podsPerReplica) must divide runtime.gpusPerPod";

    public const string CpuRanksMessage = "parallelism.expertParallelSize must equal parallelism.podsPerReplica (or be left unset) when runtime.gpusPerPod is 0: a pod without GPUs runs one rank, on CPU";

    public const string DataParallelRanksMessage = "parallelism.dataParallelAttention needs one rank per pod: expertParallelSize equal to podsPerReplica (runtime.gpusPerPod 1, or 0 on CPU), so that every rank is a Service endpoint";

    public const string SourceMessage = "model.source is required unless runtime.gpusPerPod is 0 (a CPU model without a source serves the runtime image's embedded demo model)";

    /// <summary>The checkpoint to serve and how to present it.</summary>
    [Required]
    public ModelSpec Model { get; set; } = new();

    /// <summary>The runtime container: image, GPUs per pod (0: CPU), scheduling.</summary>
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

    /// <summary>How the gateway publishes the model under its served name.</summary>
    public GatewaySpec Gateway { get; set; } = new();

    /// <summary>LoRA adapters served beside the model, each mounted read-only at /adapters/NAME and passed to the runtime (--lora-modules); names must differ from each other and from model.servedName.</summary>
    [MaxLength(64)]
    [CelRule("self.all(a, self.exists_one(b, b.name == a.name))", AdapterNamesMessage)]
    public IList<ModelAdapter>? Adapters { get; set; }

    public const string AdapterNamesMessage = "adapters[*].name must be unique";
}
