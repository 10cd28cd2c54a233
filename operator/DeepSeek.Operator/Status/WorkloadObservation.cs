namespace DeepSeek.Operator.Status;

/// <summary>
/// What the cluster reports about one replica's workload: the Deployment (all replicas) or one
/// group's StatefulSet. <paramref name="UpToDate"/>: the workload controller has seen the latest spec.
/// </summary>
public sealed record WorkloadObservation(string Name, int WantedPods, int Pods, int ReadyPods, int UpdatedPods, bool UpToDate);
