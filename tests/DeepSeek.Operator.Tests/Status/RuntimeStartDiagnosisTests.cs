using DeepSeek.Operator.Status;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Status;

/// <summary>
/// A runtime that refuses to start (serve's own check, e.g. a model its GPU cannot hold) writes why to its
/// termination message; the model's Degraded condition quotes it whole, so the plan's verdict is one
/// <c>kubectl get deepseekmodel</c> away.
/// </summary>
public sealed class RuntimeStartDiagnosisTests
{
    [Fact]
    public void A_crash_looping_runtime_is_the_problem_with_its_whole_termination_message()
    {
        // serve's first line for DeepSeek-V3 in bf16 on one H200 (DeviceFit keeps it under 300 characters).
        const string refusal = "serve: deepseek_v3 does not fit cuda (139.8 GiB free) at expert-parallel size 8 in bf16: 184.4 GiB of weights, 2.0 GiB reserve, "
            + "KV room for 0 of 163,840 context tokens. Use a larger expert-parallel size, --quantization fp8 or int4, or a shorter --max-context-length. The plan:";
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "v3-5f7c-qwert" },
            Status = new V1PodStatus
            {
                Phase = "Running",
                ContainerStatuses =
                [
                    new V1ContainerStatus
                    {
                        Name = "runtime",
                        State = new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = "CrashLoopBackOff", Message = "back-off 40s restarting failed container=runtime" } },
                        LastState = new V1ContainerState { Terminated = new V1ContainerStateTerminated { ExitCode = 1, Reason = "Error", Message = refusal } },
                    },
                ],
            },
        };
        var deployment = new V1Deployment
        {
            Metadata = new V1ObjectMeta { Name = "v3", Generation = 1 },
            Spec = new V1DeploymentSpec { Replicas = 1 },
            Status = new V1DeploymentStatus { ObservedGeneration = 1, Replicas = 1, UnavailableReplicas = 1 },
        };

        var (problem, _) = WorkloadDiagnosis.OfDeployment(deployment, [pod]);

        Assert.NotNull(problem);
        Assert.Equal("CrashLoopBackOff", problem.Reason);
        Assert.EndsWith($"(last exit: Error: {refusal})", problem.Message, StringComparison.Ordinal);
    }
}
