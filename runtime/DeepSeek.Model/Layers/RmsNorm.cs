using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSeek.Model.Layers;

/// <summary>RMSNorm: <c>w · x / √(mean(x²) + ε)</c>, reduced in at least float32 as transformers does.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double _eps;

    public RmsNorm(string name, long size, double eps, ScalarType dtype, Device device) : base(name)
    {
        _eps = eps;
        weight = new Parameter(ones([size], dtype, device), requires_grad: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? input.to(ScalarType.Float32) : input;
        var normed = x * rsqrt(x.pow(2).mean([-1], keepdim: true) + _eps);
        return (weight * normed.to(input.dtype)).MoveToOuterDisposeScope();
    }
}
