using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSeek.Model.Layers;

/// <summary>
/// A linear layer whose weight is allocated uninitialised on the target device and dtype: the
/// checkpoint overwrites it, so the random initialisation of <c>nn.Linear</c> would be wasted work
/// (minutes for a 15 B-parameter model).
/// </summary>
public sealed class Projection : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter? bias;

    public Projection(string name, long inFeatures, long outFeatures, bool hasBias, ScalarType dtype, Device device) : base(name)
    {
        weight = new Parameter(empty([outFeatures, inFeatures], dtype, device), requires_grad: false);
        if (hasBias) bias = new Parameter(empty([outFeatures], dtype, device), requires_grad: false);
        RegisterComponents();
    }

    public Tensor Weight => weight;

    public override Tensor forward(Tensor input) => nn.functional.linear(input, weight, bias);
}
