using System.ComponentModel.DataAnnotations;
using DeepSeek.Operator.Crd;
using k8s.Models;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>The runtime container and where its pods may run.</summary>
public sealed class RuntimeSpec
{
    /// <summary>Runtime container image (default: the operator's --runtime-image, or --cpu-runtime-image when gpusPerPod is 0).</summary>
    [MinLength(1)]
    public string? Image { get; set; }

    /// <summary>GPUs (nvidia.com/gpu) each pod requests; one expert-parallel rank runs per GPU. 0 runs the model on CPU, one rank per pod, on nodes without GPUs.</summary>
    [Range(0, 64)]
    public int GpusPerPod { get; set; } = 1;

    /// <summary>CPU and memory requests and limits of the runtime container; the GPU limit is set from gpusPerPod (none when it is 0).</summary>
    public V1ResourceRequirements? Resources { get; set; }

    /// <summary>Extra environment variables of the runtime container.</summary>
    public IList<V1EnvVar>? Env { get; set; }

    /// <summary>Node labels the pods require (default: the operator's --default-node-selector, which is for GPU nodes and so not applied when gpusPerPod is 0).</summary>
    [CelRule("self.all(k, k.matches('" + Validation.KubernetesSyntax.LabelKeyPattern + "'))", "runtime.nodeSelector keys must be label keys: an optional DNS-subdomain prefix and '/', then a name of at most 63 letters, digits, '-', '_' or '.' that starts and ends with a letter or digit")]
    [MaxLength(64)]
    public IDictionary<string, string>? NodeSelector { get; set; }

    /// <summary>Taints the pods tolerate (default: the operator's --default-toleration, which is for GPU nodes and so not applied when gpusPerPod is 0).</summary>
    public IList<V1Toleration>? Tolerations { get; set; }

    /// <summary>Pod affinity and anti-affinity, passed to the pods unchanged.</summary>
    [PreserveUnknownFields]
    public V1Affinity? Affinity { get; set; }

    /// <summary>PriorityClass of the pods.</summary>
    public string? PriorityClassName { get; set; }

    /// <summary>Secrets for pulling the runtime image.</summary>
    public IList<V1LocalObjectReference>? ImagePullSecrets { get; set; }

    /// <summary>Seconds a pod may take to load the model before its startup probe gives up.</summary>
    [Range(60, 86400)]
    public int StartupTimeoutSeconds { get; set; } = 1800;
}
