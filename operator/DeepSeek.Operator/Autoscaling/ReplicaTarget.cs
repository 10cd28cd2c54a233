namespace DeepSeek.Operator.Autoscaling;

/// <summary>One replica to read: where its leader answers <c>GetLoad</c>, and whether the kubelet reports that pod Ready.</summary>
public sealed record ReplicaTarget(ReplicaEndpoint Endpoint, bool PodReady);
