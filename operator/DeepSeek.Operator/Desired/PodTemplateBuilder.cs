using DeepSeek.Contract;
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

    /// <summary>Default CPU request per GPU when the model sets none.</summary>
    public const int CpuPerGpu = 2;

    /// <summary>Default memory request per GPU when the model sets none (GiB).</summary>
    public const int MemoryGiBPerGpu = 16;

    /// <summary>Size limit of /dev/shm per GPU (GiB).</summary>
    public const int SharedMemoryGiBPerGpu = 2;

    /// <summary>Default CPU request of a pod without GPUs (gpusPerPod 0) when the model sets none.</summary>
    public const int CpuModelCpu = 1;

    /// <summary>
    /// Default memory request of a pod without GPUs when the model sets none (GiB): enough for the runtime and the
    /// CPU image's embedded demo model, and small enough to schedule on a kind or minikube node. A real checkpoint
    /// on CPU holds all its weights in host memory: such a model sets runtime.resources for its size.
    /// </summary>
    public const int CpuModelMemoryGiB = 1;

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
        var source = spec.Model.Source;
        // No source (a CPU model only, validation sees to it): no volume and no --model, so the runtime serves the
        // demo checkpoint embedded in its image.
        var (volume, subPath) = source is null ? ((V1Volume?)null, (string?)null) : SourceVolume("model", source);
        // Each LoRA adapter folder on a volume of its own, mounted read-only at /adapters/NAME (its sub-path for a pvc).
        var adapters = (spec.Adapters ?? []).Select((a, i) => (Adapter: a, Volume: SourceVolume(AdapterVolume(i), a.Source))).ToList();
        var cpu = RuntimeDevice.IsCpu(spec.Runtime);
        var image = spec.Runtime.Image ?? defaults.RuntimeImageFor(spec.Runtime);
        var container = new V1Container
        {
            Name = "runtime",
            Image = image,
            Args =
            [
                RuntimeContract.ServeVerb,
                .. volume is null ? Array.Empty<string>() : [RuntimeContract.Flags.Model, RuntimeContract.ModelMountPath],
                RuntimeContract.Flags.ServedName, spec.Model.ServedName ?? name,
                RuntimeContract.Flags.Host, "0.0.0.0",
                RuntimeContract.Flags.HttpPort, RuntimeContract.Http.ToString(CultureInfo.InvariantCulture),
                RuntimeContract.Flags.GrpcPort, RuntimeContract.Grpc.ToString(CultureInfo.InvariantCulture),
                .. adapters.Count == 0 ? Array.Empty<string>()
                    : [RuntimeContract.Flags.LoraModules, .. adapters.Select(a => $"{a.Adapter.Name}={AdapterPath(a.Adapter)}")],
            ],
            Ports = Ports(group),
            EnvFrom = [new V1EnvFromSource { ConfigMapRef = new V1ConfigMapEnvSource { Name = ObjectNames.RuntimeSettings(name) } }],
            Env = Environment(model, shape, group, adapters.Count),
            Resources = Resources(spec.Runtime),
            ReadinessProbe = Probe(RuntimeContract.ReadyPath, periodSeconds: 5, failureThreshold: 3),
            LivenessProbe = Probe(RuntimeContract.HealthPath, ProbePeriodSeconds, failureThreshold: 3),
            // Model loading reads every weight once: the startup probe holds liveness off for that long.
            StartupProbe = Probe(RuntimeContract.HealthPath, ProbePeriodSeconds,
                failureThreshold: (int)Math.Ceiling(spec.Runtime.StartupTimeoutSeconds / (double)ProbePeriodSeconds)),
            VolumeMounts =
            [
                // A pvc.path mounts only that directory of the claim, so the runtime sees nothing else on it.
                .. volume is null ? Array.Empty<V1VolumeMount>() : [new V1VolumeMount { Name = "model", MountPath = RuntimeContract.ModelMountPath, SubPath = subPath, ReadOnlyProperty = true }],
                .. adapters.Select(a => new V1VolumeMount { Name = a.Volume.Volume.Name, MountPath = AdapterPath(a.Adapter), SubPath = a.Volume.SubPath, ReadOnlyProperty = true }),
                new V1VolumeMount { Name = "tmp", MountPath = "/tmp" },
                new V1VolumeMount { Name = "dshm", MountPath = "/dev/shm" },
            ],
            // Endpoints controllers and proxies learn of a terminating pod a moment after the kubelet
            // does; waiting before SIGTERM lets them stop routing here before the runtime answers 503.
            Lifecycle = new V1Lifecycle { PreStop = new V1LifecycleHandler { Sleep = new V1SleepAction { Seconds = PreStopSeconds } } },
            SecurityContext = ContainerSecurity(),
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
                InitContainers = DownloadContainers(image, source, adapters.Select(a => a.Adapter).ToList(), container.Resources),
                Containers = [container],
                Volumes =
                [
                    .. volume is null ? Array.Empty<V1Volume>() : [volume],
                    .. adapters.Select(a => a.Volume.Volume),
                    new V1Volume { Name = "tmp", EmptyDir = new V1EmptyDirVolumeSource() },
                    // NCCL and the engine use shared memory between processes of a pod; the default 64 MiB is too small.
                    // Bounded: a memory-backed emptyDir counts against the pod's memory, and an unbounded one lets a
                    // runaway writer take the node's memory before the kubelet evicts the pod. A CPU pod's one rank
                    // gets one GPU's share.
                    new V1Volume { Name = "dshm", EmptyDir = new V1EmptyDirVolumeSource { Medium = "Memory", SizeLimit = new ResourceQuantity($"{SharedMemoryGiBPerGpu * Math.Max(1, spec.Runtime.GpusPerPod)}Gi") } },
                ],
                // The preStop wait, then the runtime's drain of drainTimeoutSeconds after SIGTERM, plus a margin.
                TerminationGracePeriodSeconds = PreStopSeconds + spec.Engine.DrainTimeoutSeconds + 15,
                SecurityContext = new V1PodSecurityContext
                {
                    RunAsNonRoot = true,
                    RunAsUser = RuntimeContract.RunAsUser,
                    RunAsGroup = RuntimeContract.RunAsUser,
                    FsGroup = RuntimeContract.RunAsUser,
                    SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" },
                },
                // The operator's defaults place pods on GPU nodes (the chart's select nvidia.com/gpu.present and
                // tolerate the nvidia.com/gpu taint): a CPU pod would wait for a GPU node, or take one it has no use for.
                NodeSelector = spec.Runtime.NodeSelector is { Count: > 0 } selector
                    ? new Dictionary<string, string>(selector)
                    : !cpu && defaults.NodeSelector.Count > 0 ? new Dictionary<string, string>(defaults.NodeSelector) : null,
                Tolerations = spec.Runtime.Tolerations is { Count: > 0 } tolerations
                    ? [.. tolerations]
                    : !cpu && defaults.Tolerations.Count > 0 ? [.. defaults.Tolerations] : null,
                Affinity = spec.Runtime.Affinity,
                PriorityClassName = spec.Runtime.PriorityClassName,
                ImagePullSecrets = spec.Runtime.ImagePullSecrets is { Count: > 0 } secrets ? [.. secrets] : null,
                EnableServiceLinks = false,
                // The runtime never calls the Kubernetes API: no token in its file system to steal.
                AutomountServiceAccountToken = false,
            },
        };
    }

    private const string GpuResource = "nvidia.com/gpu";

    /// <summary>Where the download init container mounts the whole claim (the runtime mounts only pvc.path of it).</summary>
    public const string DownloadMountPath = "/claim";

    /// <summary>Where adapter <paramref name="adapter"/>'s folder is mounted in the runtime container.</summary>
    public static string AdapterPath(ModelAdapter adapter) => $"{RuntimeContract.AdapterMountPath}/{(adapter ?? throw new ArgumentNullException(nameof(adapter))).Name}";

    /// <summary>The volume of the i-th adapter (names stay DNS labels whatever the adapter's name).</summary>
    private static string AdapterVolume(int index) => $"adapter-{index.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>One download init container for the model and for each adapter whose source downloads into a claim; null when none does.</summary>
    private static List<V1Container>? DownloadContainers(string? image, ModelSource? source, List<ModelAdapter> adapters, V1ResourceRequirements runtime)
    {
        var containers = new List<V1Container>();
        if (source?.Pvc is { Download: { } download } pvc) containers.Add(DownloadContainer(image, pvc, download, runtime, "model", "download"));
        for (var i = 0; i < adapters.Count; i++)
            if (adapters[i].Source.Pvc is { Download: { } adapterDownload } adapterPvc)
                containers.Add(DownloadContainer(image, adapterPvc, adapterDownload, runtime, AdapterVolume(i), $"download-{AdapterVolume(i)}"));
        return containers.Count == 0 ? null : containers;
    }

    /// <summary>
    /// The runtime's <c>download</c> verb into pvc.path of the claim, before the runtime container starts.
    /// It mounts the claim's root, not the sub-path, so that the folder is created by the downloader (as the
    /// pod's user) rather than by the kubelet (as root) on an empty claim. The only writer of the claim.
    /// </summary>
    private static V1Container DownloadContainer(string? image, PvcModelSource pvc, ModelDownload download, V1ResourceRequirements runtime, string volume, string name)
    {
        var path = pvc.Path.Trim('/');
        var args = new List<string>
        {
            RuntimeContract.DownloadVerb, download.Repo,
            RuntimeContract.DownloadFlags.Revision, download.Revision,
            RuntimeContract.DownloadFlags.Output, path.Length == 0 ? DownloadMountPath : $"{DownloadMountPath}/{path}",
            // Every pod start runs this step: on a filled claim it must cost a stat per file, not a hash of
            // every weight and a round trip to the hub (which may be down while the weights are all there).
            RuntimeContract.DownloadFlags.SkipIfComplete,
        };
        if (download.Endpoint is { } endpoint) args.AddRange([RuntimeContract.DownloadFlags.Endpoint, endpoint]);
        return new V1Container
        {
            Name = name,
            Image = image,
            Args = args,
            Env = download.TokenSecretRef is { } token
                ?
                [
                    new V1EnvVar
                    {
                        Name = RuntimeContract.HubTokenVariable,
                        ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Name = token.Name, Key = token.Key ?? ModelDownload.DefaultTokenKey } },
                    },
                ]
                : null,
            VolumeMounts =
            [
                new V1VolumeMount { Name = volume, MountPath = DownloadMountPath, ReadOnlyProperty = false },
                new V1VolumeMount { Name = "tmp", MountPath = "/tmp" },
            ],
            // The runtime container's CPU and memory, without its GPUs: a pod's request is the larger of its init
            // containers' and the sum of its containers', so this reserves nothing more, and a pod the user made
            // Guaranteed (requests equal to limits) stays Guaranteed, which every container must be for that.
            Resources = new V1ResourceRequirements
            {
                Limits = runtime.Limits?.Where(kv => kv.Key != GpuResource).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
                Requests = runtime.Requests?.Where(kv => kv.Key != GpuResource).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            },
            SecurityContext = ContainerSecurity(),
            // The verb's error (a refused token, an unknown repository) becomes the termination message, which
            // the model's Degraded condition quotes: no one has to find the init container's log.
            TerminationMessagePolicy = "FallbackToLogsOnError",
        };
    }

    private static V1SecurityContext ContainerSecurity() => new()
    {
        AllowPrivilegeEscalation = false,
        ReadOnlyRootFilesystem = true,
        RunAsNonRoot = true,
        Capabilities = new V1Capabilities { Drop = ["ALL"] },
    };

    /// <summary>HTTP and gRPC on every pod; the expert port on the ranks of a group, where peers call it.</summary>
    private static List<V1ContainerPort> Ports(int? group)
    {
        var ports = new List<V1ContainerPort>
        {
            new() { Name = RuntimeContract.HttpName, ContainerPort = RuntimeContract.Http, Protocol = "TCP" },
            new() { Name = RuntimeContract.GrpcName, ContainerPort = RuntimeContract.Grpc, Protocol = "TCP" },
        };
        if (group is not null) ports.Add(new V1ContainerPort { Name = RuntimeContract.ExpertPortName, ContainerPort = RuntimeContract.ExpertPort, Protocol = "TCP" });
        return ports;
    }

    /// <returns>The volume <paramref name="name"/> of a model or adapter source and the sub-path of it to mount (null: all of it).</returns>
    private static (V1Volume Volume, string? SubPath) SourceVolume(string name, ModelSource source)
    {
        if (source.Pvc is { } pvc)
        {
            var path = pvc.Path.Trim('/');
            // Read-only for the whole pod unless the download init container has to write it; the runtime's
            // own mount stays read-only either way.
            return (new V1Volume { Name = name, PersistentVolumeClaim = new V1PersistentVolumeClaimVolumeSource { ClaimName = pvc.ClaimName, ReadOnlyProperty = pvc.Download is null } },
                path.Length == 0 ? null : path);
        }
        if (source.HostPath is { } hostPath)
            return (new V1Volume { Name = name, HostPath = new V1HostPathVolumeSource { Path = hostPath.Path, Type = "Directory" } }, null);
        if (source.Image is { } image)
            return (new V1Volume { Name = name, Image = new V1ImageVolumeSource { Reference = image.Reference, PullPolicy = image.PullPolicy } }, null);
        throw new ArgumentException($"The {name} volume's source has nothing set; validate the model before building it.", nameof(source));
    }

    /// <summary>At most this many adapters share a step by default (their device slots); runtime.env DEEPSEEK_MAX_LORAS overrides it.</summary>
    public const int DefaultMaxLoras = 8;

    private static List<V1EnvVar> Environment(V1Alpha1DeepSeekModel model, ModelShape shape, int? group, int adapters)
    {
        var env = new List<V1EnvVar>
        {
            new() { Name = RuntimeContract.VariableFor(RuntimeContract.Flags.WorldSize), Value = shape.ExpertParallelSize.ToString(CultureInfo.InvariantCulture) },
        };
        // Every adapter in a slot of its own, up to a bound on the memory the slots take.
        if (adapters > 0)
            env.Add(new V1EnvVar { Name = RuntimeContract.VariableFor(RuntimeContract.Flags.MaxLoras), Value = Math.Min(adapters, DefaultMaxLoras).ToString(CultureInfo.InvariantCulture) });
        // One rank per GPU: the pod's serve starts and supervises them, and exits when one dies.
        if (shape.RanksPerPod > 1)
            env.Add(new V1EnvVar { Name = RuntimeContract.VariableFor(RuntimeContract.Flags.LocalRanks), Value = shape.RanksPerPod.ToString(CultureInfo.InvariantCulture) });
        if (group is { } k)
        {
            var name = model.Metadata.Name;
            var ns = model.Metadata.NamespaceProperty ?? "default";
            var groupName = ObjectNames.Group(name, k);
            // The StatefulSet labels each pod with its ordinal; the downward API turns it into the rank.
            env.Add(new V1EnvVar
            {
                Name = RuntimeContract.VariableFor(RuntimeContract.Flags.Rank),
                ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = $"metadata.labels['{ModelLabels.PodIndex}']" } },
            });
            env.Add(new V1EnvVar
            {
                Name = RuntimeContract.VariableFor(RuntimeContract.Flags.Peers),
                Value = string.Join(",", Enumerable.Range(0, shape.PodsPerReplica).Select(i => $"{groupName}-{i}.{groupName}.{ns}.svc:{RuntimeContract.ExpertPort}")),
            });
        }
        else
        {
            env.Add(new V1EnvVar { Name = RuntimeContract.VariableFor(RuntimeContract.Flags.Rank), Value = "0" });
            // The ranks of a single-pod replica share the pod's network: its own address, once (one per pod).
            if (shape.IsExpertParallel)
                env.Add(new V1EnvVar { Name = RuntimeContract.VariableFor(RuntimeContract.Flags.Peers), Value = $"127.0.0.1:{RuntimeContract.ExpertPort}" });
        }
        if (shape.IsExpertParallel)
        {
            // Ranks refuse Experts calls without the model's token (the operator's Secret, created once).
            env.Add(new V1EnvVar
            {
                Name = RuntimeContract.GroupTokenVariable,
                ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Name = ObjectNames.GroupToken(model.Metadata.Name), Key = GroupSecurity.TokenKey } },
            });
        }
        if (model.Spec.Engine.ApiKeySecretRef is { } secret)
        {
            env.Add(new V1EnvVar
            {
                Name = RuntimeContract.VariableFor(RuntimeContract.Flags.ApiKey),
                ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Name = secret.Name, Key = secret.Key ?? EngineSpec.DefaultApiKeyKey } },
            });
        }
        // The user's own variables come last so that they can override ours on purpose.
        if (model.Spec.Runtime.Env is { } extra) env.AddRange(extra);
        return env;
    }

    /// <summary>
    /// The user's requests and limits, the GPU limit from gpusPerPod, and CPU and memory requests per GPU
    /// where the user set none: without requests a pod is BestEffort, the first evicted under memory
    /// pressure, and the scheduler reserves nothing for the host side of the engine (tokenizer, HTTP,
    /// pinned staging buffers). A pod without GPUs gets no GPU limit at all (a node without the NVIDIA
    /// device plugin has no such resource; even a limit of 0 is a GPU the user did not ask for) and the
    /// CPU model's requests. Quantities are sent in canonical form, as the API server stores them, so
    /// that comparing stored and desired children finds no false drift.
    /// </summary>
    private static V1ResourceRequirements Resources(RuntimeSpec runtime)
    {
        var limits = Canonical(runtime.Resources?.Limits);
        var requests = Canonical(runtime.Resources?.Requests);
        var cpu = RuntimeDevice.IsCpu(runtime);
        if (cpu)
        {
            // The GPU count comes from gpusPerPod alone, here none.
            limits.Remove(GpuResource);
            requests.Remove(GpuResource);
        }
        else
        {
            limits[GpuResource] = new ResourceQuantity(runtime.GpusPerPod.ToString(CultureInfo.InvariantCulture));
        }
        var defaultCpu = cpu ? CpuModelCpu : CpuPerGpu * runtime.GpusPerPod;
        var defaultMemoryGiB = cpu ? CpuModelMemoryGiB : MemoryGiBPerGpu * runtime.GpusPerPod;
        // A limit without a request makes the API server default the request to the limit: leave it so.
        if (!requests.ContainsKey("cpu") && !limits.ContainsKey("cpu")) requests["cpu"] = new ResourceQuantity(defaultCpu.ToString(CultureInfo.InvariantCulture));
        if (!requests.ContainsKey("memory") && !limits.ContainsKey("memory")) requests["memory"] = new ResourceQuantity($"{defaultMemoryGiB}Gi");
        return new V1ResourceRequirements { Limits = limits.Count > 0 ? limits : null, Requests = requests };
    }

    private static Dictionary<string, ResourceQuantity> Canonical(IDictionary<string, ResourceQuantity>? quantities) =>
        (quantities ?? new Dictionary<string, ResourceQuantity>()).ToDictionary(kv => kv.Key, kv => new ResourceQuantity(kv.Value.CanonicalizeString()), StringComparer.Ordinal);

    private static V1Probe Probe(string path, int periodSeconds, int failureThreshold) => new()
    {
        HttpGet = new V1HTTPGetAction { Path = path, Port = RuntimeContract.HttpName },
        PeriodSeconds = periodSeconds,
        FailureThreshold = failureThreshold,
        TimeoutSeconds = 5,
    };
}
