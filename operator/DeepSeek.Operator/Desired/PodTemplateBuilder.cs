using System.Globalization;
using DeepSeek.Operator.Api.V1Alpha1;
using k8s.Models;

namespace DeepSeek.Operator.Desired;

/// <summary>The runtime pod of a model: container, probes, model volume, security context, scheduling.</summary>
public static class PodTemplateBuilder
{
    /// <summary>How long a terminating runtime pod keeps serving before it is sent SIGTERM.</summary>
    public const int PreStopSeconds = 5;

    private const int ProbePeriodSeconds = 10;

    /// <param name="model">The model (validated).</param>
    /// <param name="defaults">Operator-wide defaults.</param>
    /// <param name="labels">Pod labels (selector labels plus the group's).</param>
    /// <param name="configHash">Hash of the runtime settings, so a settings change rolls the pods.</param>
    /// <param name="group">Replica group, for multi-pod replicas; null for a Deployment.</param>
    public static V1PodTemplateSpec Build(V1Alpha1DeepSeekModel model, OperatorDefaults defaults, IDictionary<string, string> labels, string configHash, int? group)
    {
        var spec = model.Spec;
        var name = model.Metadata.Name;
        var shape = ModelShape.Of(model);
        var (volume, subPath) = ModelVolume(spec.Model.Source);
        var container = new V1Container
        {
            Name = "runtime",
            Image = spec.Runtime.Image ?? defaults.RuntimeImage,
            Args =
            [
                "serve",
                "--model", RuntimePorts.ModelMountPath,
                "--served-name", spec.Model.ServedName ?? name,
                "--host", "0.0.0.0",
                "--http-port", RuntimePorts.Http.ToString(CultureInfo.InvariantCulture),
                "--grpc-port", RuntimePorts.Grpc.ToString(CultureInfo.InvariantCulture),
            ],
            Ports =
            [
                new V1ContainerPort { Name = RuntimePorts.HttpName, ContainerPort = RuntimePorts.Http, Protocol = "TCP" },
                new V1ContainerPort { Name = RuntimePorts.GrpcName, ContainerPort = RuntimePorts.Grpc, Protocol = "TCP" },
            ],
            EnvFrom = [new V1EnvFromSource { ConfigMapRef = new V1ConfigMapEnvSource { Name = ObjectNames.RuntimeSettings(name) } }],
            Env = Environment(model, shape, group),
            Resources = Resources(spec.Runtime),
            ReadinessProbe = Probe(RuntimePorts.ReadyPath, periodSeconds: 5, failureThreshold: 3),
            LivenessProbe = Probe(RuntimePorts.HealthPath, ProbePeriodSeconds, failureThreshold: 3),
            // Model loading reads every weight once: the startup probe holds liveness off for that long.
            StartupProbe = Probe(RuntimePorts.HealthPath, ProbePeriodSeconds,
                failureThreshold: (int)Math.Ceiling(spec.Runtime.StartupTimeoutSeconds / (double)ProbePeriodSeconds)),
            VolumeMounts =
            [
                // A pvc.path mounts only that directory of the claim, so the runtime sees nothing else on it.
                new V1VolumeMount { Name = "model", MountPath = RuntimePorts.ModelMountPath, SubPath = subPath, ReadOnlyProperty = true },
                new V1VolumeMount { Name = "tmp", MountPath = "/tmp" },
                new V1VolumeMount { Name = "dshm", MountPath = "/dev/shm" },
            ],
            // Endpoints controllers and proxies learn of a terminating pod a moment after the kubelet
            // does; waiting before SIGTERM lets them stop routing here before the runtime answers 503.
            Lifecycle = new V1Lifecycle { PreStop = new V1LifecycleHandler { Sleep = new V1SleepAction { Seconds = PreStopSeconds } } },
            SecurityContext = new V1SecurityContext
            {
                AllowPrivilegeEscalation = false,
                ReadOnlyRootFilesystem = true,
                RunAsNonRoot = true,
                Capabilities = new V1Capabilities { Drop = ["ALL"] },
            },
        };
        return new V1PodTemplateSpec
        {
            Metadata = new V1ObjectMeta
            {
                Labels = new Dictionary<string, string>(labels),
                Annotations = new Dictionary<string, string> { [ModelLabels.ConfigHash] = configHash },
            },
            Spec = new V1PodSpec
            {
                Containers = [container],
                Volumes =
                [
                    volume,
                    new V1Volume { Name = "tmp", EmptyDir = new V1EmptyDirVolumeSource() },
                    // NCCL and the engine use shared memory between processes of a pod; the default 64 MiB is too small.
                    new V1Volume { Name = "dshm", EmptyDir = new V1EmptyDirVolumeSource { Medium = "Memory" } },
                ],
                // The preStop wait, then the runtime's drain of drainTimeoutSeconds after SIGTERM, plus a margin.
                TerminationGracePeriodSeconds = PreStopSeconds + spec.Engine.DrainTimeoutSeconds + 15,
                SecurityContext = new V1PodSecurityContext
                {
                    RunAsNonRoot = true,
                    RunAsUser = RuntimePorts.RunAsUser,
                    RunAsGroup = RuntimePorts.RunAsUser,
                    FsGroup = RuntimePorts.RunAsUser,
                    SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" },
                },
                NodeSelector = spec.Runtime.NodeSelector is { Count: > 0 } selector
                    ? new Dictionary<string, string>(selector)
                    : defaults.NodeSelector.Count > 0 ? new Dictionary<string, string>(defaults.NodeSelector) : null,
                Tolerations = spec.Runtime.Tolerations is { Count: > 0 } tolerations
                    ? [.. tolerations]
                    : defaults.Tolerations.Count > 0 ? [.. defaults.Tolerations] : null,
                Affinity = spec.Runtime.Affinity,
                PriorityClassName = spec.Runtime.PriorityClassName,
                ImagePullSecrets = spec.Runtime.ImagePullSecrets is { Count: > 0 } secrets ? [.. secrets] : null,
                EnableServiceLinks = false,
            },
        };
    }

    /// <returns>The model volume and the sub-path of it to mount (null: all of it).</returns>
    private static (V1Volume Volume, string? SubPath) ModelVolume(ModelSource source)
    {
        if (source.Pvc is { } pvc)
        {
            var path = pvc.Path.Trim('/');
            return (new V1Volume { Name = "model", PersistentVolumeClaim = new V1PersistentVolumeClaimVolumeSource { ClaimName = pvc.ClaimName, ReadOnlyProperty = true } },
                path.Length == 0 ? null : path);
        }
        if (source.HostPath is { } hostPath)
            return (new V1Volume { Name = "model", HostPath = new V1HostPathVolumeSource { Path = hostPath.Path, Type = "Directory" } }, null);
        if (source.Image is { } image)
            return (new V1Volume { Name = "model", Image = new V1ImageVolumeSource { Reference = image.Reference, PullPolicy = image.PullPolicy } }, null);
        throw new ArgumentException("model.source has no source set; validate the model before building it.", nameof(source));
    }

    private static List<V1EnvVar> Environment(V1Alpha1DeepSeekModel model, ModelShape shape, int? group)
    {
        var env = new List<V1EnvVar>
        {
            new() { Name = "DEEPSEEK_EXPERT_PARALLEL_SIZE", Value = shape.ExpertParallelSize.ToString(CultureInfo.InvariantCulture) },
            new() { Name = "DEEPSEEK_WORLD_SIZE", Value = shape.PodsPerReplica.ToString(CultureInfo.InvariantCulture) },
        };
        if (group is { } k)
        {
            var name = model.Metadata.Name;
            var ns = model.Metadata.NamespaceProperty ?? "default";
            var groupName = ObjectNames.Group(name, k);
            // The StatefulSet labels each pod with its ordinal; the downward API turns it into the rank.
            env.Add(new V1EnvVar
            {
                Name = "DEEPSEEK_RANK",
                ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = $"metadata.labels['{ModelLabels.PodIndex}']" } },
            });
            env.Add(new V1EnvVar
            {
                Name = "DEEPSEEK_PEERS",
                Value = string.Join(",", Enumerable.Range(0, shape.PodsPerReplica).Select(i => $"{groupName}-{i}.{groupName}.{ns}.svc")),
            });
        }
        else
        {
            env.Add(new V1EnvVar { Name = "DEEPSEEK_RANK", Value = "0" });
        }
        if (model.Spec.Engine.ApiKeySecretRef is { } secret)
        {
            env.Add(new V1EnvVar
            {
                Name = "DEEPSEEK_API_KEY",
                ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Name = secret.Name, Key = secret.Key } },
            });
        }
        // The user's own variables come last so that they can override ours on purpose.
        if (model.Spec.Runtime.Env is { } extra) env.AddRange(extra);
        return env;
    }

    private static V1ResourceRequirements Resources(RuntimeSpec runtime)
    {
        var limits = new Dictionary<string, ResourceQuantity>(runtime.Resources?.Limits ?? new Dictionary<string, ResourceQuantity>())
        {
            ["nvidia.com/gpu"] = new ResourceQuantity(runtime.GpusPerPod.ToString(CultureInfo.InvariantCulture)),
        };
        var requests = runtime.Resources?.Requests is { Count: > 0 } r ? new Dictionary<string, ResourceQuantity>(r) : null;
        return new V1ResourceRequirements { Limits = limits, Requests = requests };
    }

    private static V1Probe Probe(string path, int periodSeconds, int failureThreshold) => new()
    {
        HttpGet = new V1HTTPGetAction { Path = path, Port = RuntimePorts.HttpName },
        PeriodSeconds = periodSeconds,
        FailureThreshold = failureThreshold,
        TimeoutSeconds = 5,
    };
}
