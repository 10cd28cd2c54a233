using DeepSeek.Operator.Api.V1Alpha1;

namespace DeepSeek.Operator.Desired;

/// <summary>
/// Where a model's runtime computes, derived from <c>spec.runtime.gpusPerPod</c> rather than set on its own,
/// so that a model can never ask for GPUs and compute on the CPU or the other way round: CUDA on the pod's
/// GPUs, or the CPU (one rank per pod, the CPU runtime image) when it asks for none.
/// </summary>
public static class RuntimeDevice
{
    /// <summary>The runtime's <c>--device</c> values.</summary>
    public const string Cuda = "cuda";

    public const string Cpu = "cpu";

    public static bool IsCpu(RuntimeSpec runtime) => runtime.GpusPerPod == 0;

    /// <summary>The runtime's <c>--device</c> for the model's pods.</summary>
    public static string Of(RuntimeSpec runtime) => IsCpu(runtime) ? Cpu : Cuda;
}
