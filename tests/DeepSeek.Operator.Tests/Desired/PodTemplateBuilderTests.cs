using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Desired;

/// <summary>The runtime pod: container, ports, probes, security, model volume, scheduling and the operator's defaults.</summary>
public sealed class PodTemplateBuilderTests
{
    private static readonly OperatorDefaults Defaults = new()
    {
        RuntimeImage = "runtime:default",
        NodeSelector = new Dictionary<string, string> { ["nvidia.com/gpu.present"] = "true" },
        Tolerations = [new V1Toleration { Key = "nvidia.com/gpu", OperatorProperty = "Exists", Effect = "NoSchedule" }],
    };

    private static V1PodSpec Pod(V1Alpha1DeepSeekModel model, OperatorDefaults? defaults = null)
    {
        var state = DesiredStateBuilder.Build(model, defaults ?? Defaults);
        return state.OfType<V1Deployment>().Select(d => d.Spec.Template.Spec)
            .Concat(state.OfType<V1StatefulSet>().Select(s => s.Spec.Template.Spec))
            .First();
    }

    private static V1Container Runtime(V1PodSpec pod) => Assert.Single(pod.Containers);

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    public void The_container_asks_for_gpusPerPod_gpus(int gpus)
    {
        var model = Models.SinglePod();
        model.Spec.Runtime.GpusPerPod = gpus;
        model.Spec.Runtime.Resources = new V1ResourceRequirements
        {
            Limits = new Dictionary<string, ResourceQuantity> { ["memory"] = new("64Gi") },
            Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("4") },
        };
        var resources = Runtime(Pod(model)).Resources;
        Assert.Equal(gpus.ToString(System.Globalization.CultureInfo.InvariantCulture), resources.Limits["nvidia.com/gpu"].ToString());
        Assert.Equal("64Gi", resources.Limits["memory"].ToString());
        Assert.Equal("4", resources.Requests["cpu"].ToString());
    }

    [Fact]
    public void The_container_serves_http_on_8000_and_grpc_on_50051_from_the_mounted_model()
    {
        var container = Runtime(Pod(Models.SinglePod()));
        Assert.Equal([("http", 8000), ("grpc", 50051)], container.Ports.Select(p => (p.Name, p.ContainerPort)));
        Assert.Equal("runtime:1.2.3", container.Image);
        Assert.Equal(["serve", "--model", "/models", "--served-name", "lite", "--host", "0.0.0.0", "--http-port", "8000", "--grpc-port", "50051"], container.Args);
        Assert.Equal("lite-runtime", Assert.Single(container.EnvFrom).ConfigMapRef.Name);
    }

    [Fact]
    public void The_probes_use_ready_for_readiness_health_for_liveness_and_allow_the_startup_timeout_for_loading()
    {
        var model = Models.SinglePod();
        model.Spec.Runtime.StartupTimeoutSeconds = 2405;
        var container = Runtime(Pod(model));

        Assert.Equal("/ready", container.ReadinessProbe.HttpGet.Path);
        Assert.Equal("http", container.ReadinessProbe.HttpGet.Port.Value);
        Assert.Equal("/health", container.LivenessProbe.HttpGet.Path);
        Assert.Equal("/health", container.StartupProbe.HttpGet.Path);
        var startup = container.StartupProbe;
        Assert.True(startup.PeriodSeconds * startup.FailureThreshold >= 2405,
            $"startup probe allows {startup.PeriodSeconds * startup.FailureThreshold}s, less than startupTimeoutSeconds 2405");
        // ...but not much more: a pod that never loads is restarted about when the user said.
        Assert.True(startup.PeriodSeconds * (startup.FailureThreshold - 1) < 2405);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(30)]
    [InlineData(600)]
    public void Termination_grace_outlasts_the_drain(int drainSeconds)
    {
        var model = Models.SinglePod();
        model.Spec.Engine.DrainTimeoutSeconds = drainSeconds;
        var pod = Pod(model);
        Assert.True(pod.TerminationGracePeriodSeconds > PodTemplateBuilder.PreStopSeconds + drainSeconds);
        // The pod keeps serving while endpoints drop it, and only then gets SIGTERM and drains.
        Assert.Equal(PodTemplateBuilder.PreStopSeconds, Runtime(pod).Lifecycle.PreStop.Sleep.Seconds);
    }

    [Fact]
    public void The_pod_runs_as_non_root_with_a_read_only_root_no_escalation_and_no_capabilities()
    {
        var pod = Pod(Models.MultiPod());
        var container = Runtime(pod);
        Assert.True(pod.SecurityContext.RunAsNonRoot);
        Assert.NotEqual(0, pod.SecurityContext.RunAsUser);
        Assert.True(container.SecurityContext.RunAsNonRoot);
        Assert.True(container.SecurityContext.ReadOnlyRootFilesystem);
        Assert.False(container.SecurityContext.AllowPrivilegeEscalation);
        Assert.Equal(["ALL"], container.SecurityContext.Capabilities.Drop);
        Assert.Null(container.SecurityContext.Capabilities.Add);
        Assert.Null(container.SecurityContext.Privileged);
    }

    [Fact]
    public void The_places_the_runtime_writes_are_writable_emptyDirs_and_the_model_is_read_only()
    {
        var pod = Pod(Models.SinglePod());
        var mounts = Runtime(pod).VolumeMounts.ToDictionary(m => m.MountPath);
        foreach (var writable in new[] { "/tmp", "/dev/shm" })
        {
            var mount = mounts[writable];
            Assert.NotEqual(true, mount.ReadOnlyProperty);
            Assert.NotNull(pod.Volumes.Single(v => v.Name == mount.Name).EmptyDir);
        }
        Assert.Equal("Memory", pod.Volumes.Single(v => v.Name == mounts["/dev/shm"].Name).EmptyDir.Medium);
        Assert.True(mounts["/models"].ReadOnlyProperty);
        // Every mount has its volume.
        Assert.All(mounts.Values, m => Assert.Contains(pod.Volumes, v => v.Name == m.Name));
    }

    [Fact]
    public void A_pvc_source_with_a_path_mounts_that_directory_of_the_claim_read_only()
    {
        var pod = Pod(Models.SinglePod());
        var volume = pod.Volumes.Single(v => v.Name == "model");
        Assert.Equal("weights", volume.PersistentVolumeClaim.ClaimName);
        Assert.True(volume.PersistentVolumeClaim.ReadOnlyProperty);
        var mount = Runtime(pod).VolumeMounts.Single(m => m.Name == "model");
        Assert.Equal("/models", mount.MountPath);
        Assert.Equal("deepseek-v2-lite", mount.SubPath);
        Assert.True(mount.ReadOnlyProperty);
    }

    [Fact]
    public void A_pvc_source_without_a_path_mounts_the_whole_claim()
    {
        var model = Models.SinglePod();
        model.Spec.Model.Source!.Pvc!.Path = "";
        Assert.Null(Runtime(Pod(model)).VolumeMounts.Single(m => m.Name == "model").SubPath);
    }

    [Fact]
    public void A_hostPath_source_mounts_the_node_directory_read_only()
    {
        var model = Models.SinglePod();
        model.Spec.Model.Source = new ModelSource { HostPath = new HostPathModelSource { Path = "/data/deepseek-v2-lite" } };
        var pod = Pod(model);
        var volume = pod.Volumes.Single(v => v.Name == "model");
        Assert.Null(volume.PersistentVolumeClaim);
        Assert.Equal("/data/deepseek-v2-lite", volume.HostPath.Path);
        Assert.Equal("Directory", volume.HostPath.Type);
        var mount = Runtime(pod).VolumeMounts.Single(m => m.Name == "model");
        Assert.True(mount.ReadOnlyProperty);
        Assert.Null(mount.SubPath);
    }

    [Theory]
    [InlineData("Always")]
    [InlineData("IfNotPresent")]
    public void An_image_source_becomes_an_image_volume_with_its_pull_policy(string pullPolicy)
    {
        var model = Models.SinglePod();
        model.Spec.Model.Source = new ModelSource { Image = new ImageModelSource { Reference = "registry.example/models/v3:fp8", PullPolicy = pullPolicy } };
        var volume = Pod(model).Volumes.Single(v => v.Name == "model");
        Assert.Equal("registry.example/models/v3:fp8", volume.Image.Reference);
        Assert.Equal(pullPolicy, volume.Image.PullPolicy);
        Assert.True(Runtime(Pod(model)).VolumeMounts.Single(m => m.Name == "model").ReadOnlyProperty);
    }

    [Fact]
    public void Scheduling_settings_of_the_model_are_passed_through_and_win_over_the_operators_defaults()
    {
        var model = Models.SinglePod();
        var affinity = new V1Affinity
        {
            NodeAffinity = new V1NodeAffinity
            {
                RequiredDuringSchedulingIgnoredDuringExecution = new V1NodeSelector
                {
                    NodeSelectorTerms = [new V1NodeSelectorTerm { MatchExpressions = [new V1NodeSelectorRequirement { Key = "gpu.product", OperatorProperty = "In", Values = ["H100"] }] }],
                },
            },
        };
        model.Spec.Runtime.NodeSelector = new Dictionary<string, string> { ["pool"] = "h100" };
        model.Spec.Runtime.Tolerations = [new V1Toleration { Key = "dedicated", OperatorProperty = "Equal", Value = "inference", Effect = "NoExecute" }];
        model.Spec.Runtime.Affinity = affinity;
        model.Spec.Runtime.PriorityClassName = "inference-high";
        model.Spec.Runtime.ImagePullSecrets = [new V1LocalObjectReference { Name = "registry-creds" }];

        var pod = Pod(model);

        Assert.Equal(new Dictionary<string, string> { ["pool"] = "h100" }, pod.NodeSelector);
        var toleration = Assert.Single(pod.Tolerations);
        Assert.Equal(("dedicated", "Equal", "inference", "NoExecute"), (toleration.Key, toleration.OperatorProperty, toleration.Value, toleration.Effect));
        Assert.Same(affinity, pod.Affinity);
        Assert.Equal("inference-high", pod.PriorityClassName);
        Assert.Equal("registry-creds", Assert.Single(pod.ImagePullSecrets).Name);
        Assert.Equal("runtime:1.2.3", Runtime(pod).Image);
    }

    [Fact]
    public void The_operators_defaults_apply_only_to_models_that_set_nothing()
    {
        var model = Models.SinglePod();
        model.Spec.Runtime.Image = null;

        var pod = Pod(model);

        Assert.Equal("runtime:default", Runtime(pod).Image);
        Assert.Equal(new Dictionary<string, string> { ["nvidia.com/gpu.present"] = "true" }, pod.NodeSelector);
        var toleration = Assert.Single(pod.Tolerations);
        Assert.Equal(("nvidia.com/gpu", "Exists", "NoSchedule"), (toleration.Key, toleration.OperatorProperty, toleration.Effect));
        Assert.Null(pod.Affinity);
        Assert.Null(pod.PriorityClassName);
        Assert.Null(pod.ImagePullSecrets);
    }

    [Fact]
    public void Without_operator_defaults_a_model_that_sets_nothing_gets_no_selector_or_tolerations()
    {
        var pod = Pod(Models.SinglePod(), new OperatorDefaults { RuntimeImage = "runtime:default" });
        Assert.Null(pod.NodeSelector);
        Assert.Null(pod.Tolerations);
    }

    [Fact]
    public void The_users_env_comes_after_the_operators_so_it_can_override_on_purpose()
    {
        var model = Models.SinglePod();
        model.Spec.Runtime.Env = [new V1EnvVar { Name = "NCCL_DEBUG", Value = "INFO" }];
        var env = Runtime(Pod(model)).Env;
        Assert.Equal("NCCL_DEBUG", env[^1].Name);
        Assert.Equal("INFO", env[^1].Value);
    }
}
