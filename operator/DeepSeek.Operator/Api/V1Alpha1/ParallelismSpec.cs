using System.ComponentModel.DataAnnotations;
using DeepSeek.Operator.Crd;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>How one replica is laid out: pods per replica and expert-parallel ranks.</summary>
public sealed class ParallelismSpec
{
    /// <summary>Pods in one replica group; 1 gives a Deployment, more give one StatefulSet per group.</summary>
    [Range(1, 64)]
    public int PodsPerReplica { get; set; } = 1;

    /// <summary>Expert-parallel ranks per replica (default: podsPerReplica × gpusPerPod; podsPerReplica when gpusPerPod is 0, one CPU rank per pod).</summary>
    [Range(1, 4096)]
    public int? ExpertParallelSize { get; set; }

    /// <summary>Extra copies of the hottest routed experts spread over the ranks.</summary>
    [Range(0, 1024)]
    public int RedundantExperts { get; set; }

    /// <summary>Seconds between expert rebalancing passes from observed load; 0 (the default) turns rebalancing off. Works over either expert transport.</summary>
    [Range(0, 86400)]
    public int RebalanceIntervalSeconds { get; set; }

    /// <summary>
    /// Every rank of a replica serves requests with its own scheduler and KV cache and sends its own tokens to the
    /// experts' holders (the model's Service spreads requests over all ranks, the autoscaler sums their queues);
    /// false (the default): rank 0 of each replica runs every request. One rank per pod; ranks talk over gRPC.
    /// </summary>
    public bool DataParallelAttention { get; set; }
}
