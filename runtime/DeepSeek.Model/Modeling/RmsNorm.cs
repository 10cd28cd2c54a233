using DeepSeek.Model.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>RMSNorm: <c>w · x / √(mean(x²) + ε)</c>, reduced in at least float32 as transformers does.</summary>
internal sealed class RmsNorm : WeightedModule
{
    private Parameter weight;
    private readonly double _eps;
    private readonly Scalar _epsScalar; // held: no temporary Scalar per step (HeldScalars says why)
    private NativeHelper? _fused;

    public RmsNorm(string name, long size, double eps, ScalarType dtype) : base(name)
    {
        _eps = eps;
        _epsScalar = eps.ToScalar();
        weight = Declare(dtype, size);
        RegisterComponents();
    }

    internal override void Allocate(Device device) => weight = Allocated(nameof(weight), weight, device);

    /// <summary>
    /// Normalises with <paramref name="helper"/>'s fused kernel from now on (CUDA): one launch instead
    /// of eight. It multiplies by the weight in float32 before rounding once, where transformers
    /// rounds the normalised values to the dtype first, a difference of one bf16 rounding.
    /// </summary>
    public void UseFusedKernel(NativeHelper helper) => _fused = helper;

    public Tensor Forward(Tensor input)
    {
        if (_fused is not null && input.device_type == DeviceType.CUDA) return _fused.RmsNorm(input, weight, _eps);
        var x = input.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? input.to(ScalarType.Float32) : input;
        var normed = x * rsqrt(x.pow(HeldScalars.Two).mean([-1], keepdim: true).Plus(_epsScalar));
        return weight * normed.to(input.dtype);
    }
}
