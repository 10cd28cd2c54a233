namespace DeepSeek.Operator.Status;

/// <summary>
/// What the cluster reports about one replica's workload: the Deployment (all replicas) or one
/// group's StatefulSet. <paramref name="UpToDate"/>: the workload controller has seen the latest spec.
/// <paramref name="Problem"/>: why its pods are not created or not ready, from the workload's own
/// conditions, its pods and its events. <paramref name="Stuck"/>: the workload gave up progressing
/// (a Deployment's ProgressDeadlineExceeded).
/// </summary>
public sealed record WorkloadObservation(string Name, int WantedPods, int Pods, int ReadyPods, int UpdatedPods, bool UpToDate, ModelProblem? Problem = null, bool Stuck = false);
