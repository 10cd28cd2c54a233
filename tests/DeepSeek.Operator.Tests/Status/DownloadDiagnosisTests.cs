using DeepSeek.Operator.Status;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Status;

/// <summary>A model download that keeps failing is named in the model's status, with the verb's own message.</summary>
public sealed class DownloadDiagnosisTests
{
    [Fact]
    public void A_crash_looping_download_init_container_is_the_problem_with_its_termination_message()
    {
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "lite-7d9c-abcde" },
            Status = new V1PodStatus
            {
                Phase = "Pending",
                InitContainerStatuses =
                [
                    new V1ContainerStatus
                    {
                        Name = "download",
                        State = new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = "CrashLoopBackOff", Message = "back-off 20s restarting failed container=download" } },
                        LastState = new V1ContainerState { Terminated = new V1ContainerStateTerminated { ExitCode = 1, Reason = "Error", Message = "download: https://huggingface.co/api/models/team/private: the hub wants a token (set HF_TOKEN) or refused the one given.\n" } },
                    },
                ],
                ContainerStatuses = [new V1ContainerStatus { Name = "runtime", State = new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = "PodInitializing" } } }],
            },
        };
        var set = new V1StatefulSet { Metadata = new V1ObjectMeta { Name = "lite-g0", Generation = 1 }, Spec = new V1StatefulSetSpec { Replicas = 1 }, Status = new V1StatefulSetStatus { ObservedGeneration = 1, Replicas = 1 } };

        var problem = WorkloadDiagnosis.OfStatefulSet(set, [pod], []);

        Assert.NotNull(problem);
        Assert.Equal("CrashLoopBackOff", problem.Reason);
        Assert.Equal("Pod lite-7d9c-abcde init container download: CrashLoopBackOff: back-off 20s restarting failed container=download "
            + "(last exit: Error: download: https://huggingface.co/api/models/team/private: the hub wants a token (set HF_TOKEN) or refused the one given.)", problem.Message);
    }

    [Fact]
    public void A_download_in_progress_is_no_problem()
    {
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "p" },
            Status = new V1PodStatus
            {
                InitContainerStatuses = [new V1ContainerStatus { Name = "download", State = new V1ContainerState { Running = new V1ContainerStateRunning() } }],
                ContainerStatuses = [new V1ContainerStatus { Name = "runtime", State = new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = "PodInitializing" } } }],
            },
        };
        var set = new V1StatefulSet { Metadata = new V1ObjectMeta { Name = "g", Generation = 1 }, Spec = new V1StatefulSetSpec { Replicas = 1 }, Status = new V1StatefulSetStatus { ObservedGeneration = 1, Replicas = 1 } };
        Assert.Null(WorkloadDiagnosis.OfStatefulSet(set, [pod], []));
    }
}
