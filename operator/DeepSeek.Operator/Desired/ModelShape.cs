using DeepSeek.Operator.Api.V1Alpha1;

namespace DeepSeek.Operator.Desired;

/// <summary>
/// The effective layout of a model after defaults: replicas, pods per group, ranks, and whether every rank
/// serves requests (data-parallel attention: a Service endpoint each, read by the autoscaler) or only rank 0.
/// </summary>
public sealed record ModelShape(int Replicas, int PodsPerReplica, int GpusPerPod, int ExpertParallelSize, bool DataParallelAttention = false)
{
    public bool IsMultiPod => PodsPerReplica > 1;

    /// <summary>More than one rank per replica: the ranks need the group token (and are fenced by the NetworkPolicy).</summary>
    public bool IsExpertParallel => ExpertParallelSize > 1;

    /// <summary>Ranks each pod's <c>serve</c> runs (<c>--local-ranks</c>), one per GPU it uses (one on CPU); validation keeps it whole.</summary>
    public int RanksPerPod => Math.Max(1, ExpertParallelSize / PodsPerReplica);

    public static ModelShape Of(V1Alpha1DeepSeekModel model)
    {
        var spec = model.Spec;
        return new ModelShape(DesiredReplicas(model), spec.Parallelism.PodsPerReplica, spec.Runtime.GpusPerPod, ExpertParallelSizeOf(spec), spec.Parallelism.DataParallelAttention);
    }

    /// <summary>parallelism.expertParallelSize, or its default: podsPerReplica × gpusPerPod (a pod without GPUs runs one rank, on CPU).</summary>
    public static int ExpertParallelSizeOf(DeepSeekModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var ranksPerPod = RuntimeDevice.IsCpu(spec.Runtime) ? 1 : spec.Runtime.GpusPerPod;
        return spec.Parallelism.ExpertParallelSize ?? spec.Parallelism.PodsPerReplica * ranksPerPod;
    }

    /// <summary>spec.replicas, or while autoscaling is on, the autoscaler's last decision kept within its bounds.</summary>
    public static int DesiredReplicas(V1Alpha1DeepSeekModel model)
    {
        var autoscaling = model.Spec.Autoscaling;
        if (!autoscaling.Enabled) return model.Spec.Replicas;
        var decided = model.Status?.DesiredReplicas ?? autoscaling.MinReplicas;
        return Math.Clamp(decided, autoscaling.MinReplicas, Math.Max(autoscaling.MinReplicas, autoscaling.MaxReplicas));
    }
}
