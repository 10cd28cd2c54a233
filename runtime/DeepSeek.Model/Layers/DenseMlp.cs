using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Layers;

/// <summary>SwiGLU MLP <c>down(silu(gate(x)) · up(x))</c>: the dense layers, each routed expert, and the shared experts.</summary>
public sealed class DenseMlp : nn.Module<Tensor, Tensor>
{
    private readonly Projection gate_proj;
    private readonly Projection up_proj;
    private readonly Projection down_proj;

    public DenseMlp(string name, long hiddenSize, long intermediateSize, ScalarType dtype, Device device) : base(name)
    {
        gate_proj = new Projection(nameof(gate_proj), hiddenSize, intermediateSize, false, dtype, device);
        up_proj = new Projection(nameof(up_proj), hiddenSize, intermediateSize, false, dtype, device);
        down_proj = new Projection(nameof(down_proj), intermediateSize, hiddenSize, false, dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var activated = nn.functional.silu(gate_proj.forward(input)) * up_proj.forward(input);
        return down_proj.forward(activated).MoveToOuterDisposeScope();
    }
}
