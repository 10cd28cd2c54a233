using k8s.Models;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>The observed state of a DeepSeekModel.</summary>
public sealed class DeepSeekModelStatus
{
    /// <summary>The metadata.generation this status describes.</summary>
    public long? ObservedGeneration { get; set; }

    /// <summary>Replicas (replica groups) that exist.</summary>
    public int? Replicas { get; set; }

    /// <summary>Replicas whose pods are all ready.</summary>
    public int? ReadyReplicas { get; set; }

    /// <summary>Replicas the operator wants (the autoscaler's decision when autoscaling is on).</summary>
    public int? DesiredReplicas { get; set; }

    /// <summary>Waiting requests per replica last observed by the autoscaler.</summary>
    public double? QueueDepth { get; set; }

    /// <summary>Label selector of the model's pods, for the scale subresource.</summary>
    public string? Selector { get; set; }

    /// <summary>In-cluster address of the model's OpenAI-compatible HTTP API.</summary>
    public string? Endpoint { get; set; }

    /// <summary>Names of the LoRA adapters the pods are given (spec.adapters), which clients may send as model beside the served name.</summary>
    public IList<string>? Adapters { get; set; }

    /// <summary>Available, Progressing, Degraded and ScalingLimited, each with a reason and a message.</summary>
    public IList<V1Condition>? Conditions { get; set; }
}
