using k8s.Models;

namespace DeepSeek.Operator.Status;

/// <summary>
/// Why a workload's pods are not created or not ready, in the workload's own words (a pure function):
/// the Deployment's Progressing=False/ProgressDeadlineExceeded and ReplicaFailure conditions, a pod the
/// scheduler cannot place, a container waiting for a reason that does not clear by itself
/// (ImagePullBackOff, CrashLoopBackOff, ...), and for a StatefulSet, which has no such conditions, its
/// latest FailedCreate warning event.
/// </summary>
public static class WorkloadDiagnosis
{
    /// <summary>Container waiting reasons that mean the pod will not become ready without a change (kubelet's reasons).</summary>
    private static readonly HashSet<string> StuckWaiting = new(StringComparer.Ordinal)
    {
        "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull", "CrashLoopBackOff",
        "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
    };

    public static (ModelProblem? Problem, bool Stuck) OfDeployment(V1Deployment deployment, IReadOnlyList<V1Pod> pods)
    {
        ArgumentNullException.ThrowIfNull(deployment);
        var conditions = deployment.Status?.Conditions ?? [];
        var progressing = conditions.FirstOrDefault(c => c.Type == "Progressing");
        if (progressing is { Status: "False", Reason: "ProgressDeadlineExceeded" })
        {
            var cause = OfPods(pods);
            return (new ModelProblem("ProgressDeadlineExceeded",
                $"Deployment {deployment.Metadata.Name} stopped progressing: {progressing.Message}{(cause is null ? "" : " " + cause.Message)}"), true);
        }
        var failure = conditions.FirstOrDefault(c => c.Type == "ReplicaFailure" && c.Status == "True");
        if (failure is not null)
            return (new ModelProblem(failure.Reason ?? "FailedCreate", $"Deployment {deployment.Metadata.Name} cannot create pods: {failure.Message}"), false);
        return (OfPods(pods), false);
    }

    public static ModelProblem? OfStatefulSet(V1StatefulSet set, IReadOnlyList<V1Pod> pods, IReadOnlyList<Corev1Event> warnings)
    {
        ArgumentNullException.ThrowIfNull(set);
        if (PodsMissing(set) && warnings.FirstOrDefault(e => e.Reason == "FailedCreate") is { } failed)
            return new ModelProblem("FailedCreate", $"StatefulSet {set.Metadata.Name} cannot create pods: {failed.Message}");
        return OfPods(pods);
    }

    /// <summary>A termination message (an init container's last log lines) cut to what a condition message can carry.</summary>
    private static string Shortened(string message)
    {
        var text = message.Trim().ReplaceLineEndings(" ");
        return text.Length > 300 ? text[^300..] : text;
    }

    /// <summary>The StatefulSet controller has seen the spec and still runs fewer pods than it should: then its events say why.</summary>
    public static bool PodsMissing(V1StatefulSet set) =>
        set.Status?.ObservedGeneration is { } observed && observed >= (set.Metadata.Generation ?? 0)
        && (set.Status.Replicas) < (set.Spec?.Replicas ?? 0);

    private static ModelProblem? OfPods(IReadOnlyList<V1Pod> pods)
    {
        foreach (var pod in pods.OrderBy(p => p.Metadata.Name, StringComparer.Ordinal))
        {
            // Init containers first (the model download): while one fails, the runtime container never starts.
            var containers = (pod.Status?.InitContainerStatuses ?? []).Select(c => (Status: c, Kind: "init container"))
                .Concat((pod.Status?.ContainerStatuses ?? []).Select(c => (Status: c, Kind: "container")));
            foreach (var (container, kind) in containers)
            {
                if (container.State?.Waiting is { Reason: { } reason } waiting && StuckWaiting.Contains(reason))
                {
                    var last = container.LastState?.Terminated is { } terminated
                        ? $" (last exit: {terminated.Reason ?? "code " + terminated.ExitCode}{(string.IsNullOrWhiteSpace(terminated.Message) ? "" : ": " + Shortened(terminated.Message))})"
                        : "";
                    return new ModelProblem(reason, $"Pod {pod.Metadata.Name} {kind} {container.Name}: {reason}{(string.IsNullOrEmpty(waiting.Message) ? "" : ": " + waiting.Message)}{last}");
                }
            }
            var scheduled = pod.Status?.Conditions?.FirstOrDefault(c => c.Type == "PodScheduled");
            if (scheduled is { Status: "False", Reason: "Unschedulable" })
                return new ModelProblem("Unschedulable", $"Pod {pod.Metadata.Name} cannot be scheduled: {scheduled.Message}");
        }
        return null;
    }
}
