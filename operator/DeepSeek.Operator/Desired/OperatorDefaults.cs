using DeepSeek.Operator.Api.V1Alpha1;
using k8s.Models;

namespace DeepSeek.Operator.Desired;

/// <summary>Settings of the operator applied to models that leave them unset (from the run verb's flags).</summary>
public sealed record OperatorDefaults
{
    /// <summary>Runtime image for models without <c>spec.runtime.image</c> that run on GPUs.</summary>
    public string? RuntimeImage { get; init; }

    /// <summary>Runtime image for models without <c>spec.runtime.image</c> that run on CPU (<c>gpusPerPod: 0</c>): the CUDA image's PyTorch base is several GiB a CPU node never uses.</summary>
    public string? CpuRuntimeImage { get; init; }

    /// <summary>Node selector for models without <c>spec.runtime.nodeSelector</c> that run on GPUs.</summary>
    public IReadOnlyDictionary<string, string> NodeSelector { get; init; } = new Dictionary<string, string>();

    /// <summary>Tolerations for models without <c>spec.runtime.tolerations</c> that run on GPUs.</summary>
    public IReadOnlyList<V1Toleration> Tolerations { get; init; } = [];

    /// <summary>The default image for a model of this runtime section (null: none was given to the operator).</summary>
    public string? RuntimeImageFor(RuntimeSpec runtime) => RuntimeDevice.IsCpu(runtime) ? CpuRuntimeImage : RuntimeImage;

    /// <summary>The operator flag that sets <see cref="RuntimeImageFor"/>, for messages that tell what is missing.</summary>
    public static string RuntimeImageFlagFor(RuntimeSpec runtime) => RuntimeDevice.IsCpu(runtime) ? "--cpu-runtime-image" : "--runtime-image";
}
