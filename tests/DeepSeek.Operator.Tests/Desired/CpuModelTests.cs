using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Validation;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Desired;

/// <summary>
/// A model with <c>gpusPerPod: 0</c> runs on CPU (issue 28, item 9): no GPU resource, the runtime started with
/// <c>--device cpu</c>, the operator's CPU image, none of its GPU-node scheduling defaults, one rank per pod, and
/// without a model source the CPU image's embedded demo model.
/// </summary>
public sealed class CpuModelTests
{
    private static readonly OperatorDefaults Defaults = new()
    {
        RuntimeImage = "runtime:cuda",
        CpuRuntimeImage = "runtime:cpu",
        NodeSelector = new Dictionary<string, string> { ["nvidia.com/gpu.present"] = "true" },
        Tolerations = [new V1Toleration { Key = "nvidia.com/gpu", OperatorProperty = "Exists", Effect = "NoSchedule" }],
    };

    private static DesiredState Build(V1Alpha1DeepSeekModel model) => DesiredStateBuilder.Build(model, Defaults);

    private static V1PodSpec Pod(V1Alpha1DeepSeekModel model) => Build(model).OfType<V1Deployment>().Single().Spec.Template.Spec;

    private static V1Container Runtime(V1Alpha1DeepSeekModel model) => Assert.Single(Pod(model).Containers);

    private static Dictionary<string, string> Env(V1Container container) => container.Env.ToDictionary(e => e.Name, e => e.Value);

    [Fact]
    public void The_runtime_is_told_device_cpu_and_a_gpu_model_cuda()
    {
        Assert.Equal("cpu", Build(Models.Cpu()).OfType<V1ConfigMap>().Single().Data["DEEPSEEK_DEVICE"]);
        Assert.Equal("cuda", Build(Models.SinglePod()).OfType<V1ConfigMap>().Single().Data["DEEPSEEK_DEVICE"]);
    }

    [Fact]
    public void The_pod_asks_for_no_gpu_and_for_the_cpu_models_cpu_and_memory()
    {
        var resources = Runtime(Models.Cpu()).Resources;
        Assert.Null(resources.Limits);
        Assert.Equal(new Dictionary<string, string> { ["cpu"] = "1", ["memory"] = "1Gi" }, resources.Requests.ToDictionary(r => r.Key, r => r.Value.ToString()));
    }

    [Fact]
    public void The_users_resources_are_kept_and_a_gpu_among_them_is_dropped()
    {
        var model = Models.Cpu();
        model.Spec.Runtime.Resources = new V1ResourceRequirements
        {
            Limits = new Dictionary<string, ResourceQuantity> { ["memory"] = new("8Gi"), ["nvidia.com/gpu"] = new("1") },
            Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("4"), ["nvidia.com/gpu"] = new("1") },
        };
        var resources = Runtime(model).Resources;
        Assert.Equal(new Dictionary<string, string> { ["memory"] = "8Gi" }, resources.Limits.ToDictionary(r => r.Key, r => r.Value.ToString()));
        // No memory request: the memory limit makes the API server default it to the limit.
        Assert.Equal(new Dictionary<string, string> { ["cpu"] = "4" }, resources.Requests.ToDictionary(r => r.Key, r => r.Value.ToString()));
    }

    [Fact]
    public void The_image_is_the_operators_cpu_image_unless_the_model_names_one()
    {
        Assert.Equal("runtime:cpu", Runtime(Models.Cpu()).Image);
        var gpu = Models.SinglePod();
        gpu.Spec.Runtime.Image = null;
        Assert.Equal("runtime:cuda", Runtime(gpu).Image);

        var named = Models.Cpu();
        named.Spec.Runtime.Image = "registry.example/deepseek-runtime:0.1.0-cpu";
        Assert.Equal("registry.example/deepseek-runtime:0.1.0-cpu", Runtime(named).Image);
    }

    [Fact]
    public void Without_a_source_the_pod_mounts_no_model_and_the_runtime_serves_its_embedded_one()
    {
        var pod = Pod(Models.Cpu());
        var container = Assert.Single(pod.Containers);
        Assert.Equal(["serve", "--served-name", "demo", "--host", "0.0.0.0", "--http-port", "8000", "--grpc-port", "50051"], container.Args);
        Assert.Equal(["tmp", "dshm"], pod.Volumes.Select(v => v.Name));
        Assert.Equal(["tmp", "dshm"], container.VolumeMounts.Select(m => m.Name));
        Assert.Null(pod.InitContainers);
        Assert.Equal("2Gi", pod.Volumes.Single(v => v.Name == "dshm").EmptyDir.SizeLimit.ToString());
    }

    [Fact]
    public void With_a_source_a_cpu_pod_mounts_and_serves_it_like_a_gpu_pod()
    {
        var model = Models.Cpu();
        model.Spec.Model.Source = new ModelSource { Pvc = new PvcModelSource { ClaimName = "weights", Path = "tiny", Download = new ModelDownload { Repo = "team/tiny" } } };
        var pod = Pod(model);
        Assert.Equal(["serve", "--model", "/models"], Runtime(model).Args.Take(3));
        Assert.Equal("weights", pod.Volumes.Single(v => v.Name == "model").PersistentVolumeClaim.ClaimName);
        var download = Assert.Single(pod.InitContainers);
        Assert.Equal("runtime:cpu", download.Image);
        Assert.DoesNotContain("nvidia.com/gpu", download.Resources.Requests?.Keys ?? []);
    }

    [Fact]
    public void The_operators_gpu_node_defaults_are_not_applied_but_the_models_own_scheduling_is()
    {
        var pod = Pod(Models.Cpu());
        Assert.Null(pod.NodeSelector);
        Assert.Null(pod.Tolerations);

        var model = Models.Cpu();
        model.Spec.Runtime.NodeSelector = new Dictionary<string, string> { ["pool"] = "cpu" };
        model.Spec.Runtime.Tolerations = [new V1Toleration { Key = "dedicated", OperatorProperty = "Equal", Value = "inference", Effect = "NoSchedule" }];
        pod = Pod(model);
        Assert.Equal(new Dictionary<string, string> { ["pool"] = "cpu" }, pod.NodeSelector);
        Assert.Equal("dedicated", Assert.Single(pod.Tolerations).Key);
    }

    [Fact]
    public void Probes_are_those_of_a_gpu_pod()
    {
        var cpu = Runtime(Models.Cpu());
        var gpu = Runtime(Models.SinglePod());
        foreach (var (a, b) in new[] { (cpu.ReadinessProbe, gpu.ReadinessProbe), (cpu.LivenessProbe, gpu.LivenessProbe), (cpu.StartupProbe, gpu.StartupProbe) })
        {
            Assert.Equal((b.HttpGet.Path, b.HttpGet.Port.Value, b.PeriodSeconds, b.FailureThreshold, b.TimeoutSeconds), (a.HttpGet.Path, a.HttpGet.Port.Value, a.PeriodSeconds, a.FailureThreshold, a.TimeoutSeconds));
        }
    }

    [Fact]
    public void A_single_pod_replica_is_one_rank_without_local_ranks_or_group_token()
    {
        var state = Build(Models.Cpu());
        var env = Env(Runtime(Models.Cpu()));
        Assert.Equal("1", env["DEEPSEEK_WORLD_SIZE"]);
        Assert.Equal("0", env["DEEPSEEK_RANK"]);
        Assert.DoesNotContain("DEEPSEEK_LOCAL_RANKS", env.Keys);
        Assert.Null(state.GroupToken);
        Assert.Empty(state.OfType<V1NetworkPolicy>());
    }

    [Fact]
    public void A_multi_pod_replica_has_one_rank_per_pod()
    {
        var model = Models.Cpu(replicas: 1);
        model.Spec.Parallelism.PodsPerReplica = 3;
        var state = Build(model);
        var set = Assert.Single(state.OfType<V1StatefulSet>());
        Assert.Equal(3, set.Spec.Replicas);
        var container = Assert.Single(set.Spec.Template.Spec.Containers);
        var env = Env(container);
        Assert.Equal("3", env["DEEPSEEK_WORLD_SIZE"]);
        Assert.DoesNotContain("DEEPSEEK_LOCAL_RANKS", env.Keys);
        Assert.Equal(3, env["DEEPSEEK_PEERS"].Split(',').Length);
        Assert.DoesNotContain("nvidia.com/gpu", container.Resources.Limits?.Keys ?? []);
        Assert.NotNull(state.GroupToken);
    }

    [Fact]
    public void An_operator_without_a_cpu_image_refuses_a_cpu_model_without_one_naming_the_flag()
    {
        var error = Assert.Single(ModelValidator.Validate(Models.Cpu(), new OperatorDefaults { RuntimeImage = "runtime:cuda" }));
        Assert.Equal("spec.runtime.image", error.Field);
        Assert.Contains("--cpu-runtime-image", error.Message, StringComparison.Ordinal);
        Assert.Empty(ModelValidator.Validate(Models.Cpu(), Defaults));
    }
}
