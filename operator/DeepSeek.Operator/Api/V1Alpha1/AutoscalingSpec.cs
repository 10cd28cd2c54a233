using System.ComponentModel.DataAnnotations;
using DeepSeek.Operator.Crd;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>Built-in autoscaling of replicas on the runtime's queue depth.</summary>
// Guarded with has(): the API server also evaluates the rule on the schema's `default: {}` of this
// object as written, before nested defaults fill minReplicas and maxReplicas in.
[CelRule("!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas", "autoscaling.minReplicas must not exceed autoscaling.maxReplicas", FieldPath = ".minReplicas")]
public sealed class AutoscalingSpec
{
    /// <summary>Let the operator set the replica count from queue depth (spec.replicas is then ignored).</summary>
    public bool Enabled { get; set; }

    /// <summary>Fewest replicas.</summary>
    [Range(1, 1000)]
    public int MinReplicas { get; set; } = 1;

    /// <summary>Most replicas.</summary>
    [Range(1, 1000)]
    public int MaxReplicas { get; set; } = 4;

    /// <summary>Waiting requests per replica the autoscaler aims for.</summary>
    [Range(0.1, 100000.0)]
    public double TargetQueueDepth { get; set; } = 8;

    /// <summary>Seconds a higher recommendation must hold before scaling up.</summary>
    [Range(0, 3600)]
    public int ScaleUpStabilizationSeconds { get; set; }

    /// <summary>Seconds a lower recommendation must hold before scaling down.</summary>
    [Range(0, 86400)]
    public int ScaleDownStabilizationSeconds { get; set; } = 300;

    /// <summary>Seconds between reads of each replica's load.</summary>
    [Range(1, 3600)]
    public int PollIntervalSeconds { get; set; } = 15;
}
