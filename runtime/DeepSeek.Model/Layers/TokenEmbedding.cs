using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSeek.Model.Layers;

/// <summary>The token embedding table (<c>embed_tokens.weight</c>), uninitialised until loaded.</summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    public TokenEmbedding(string name, long vocabSize, long hiddenSize, ScalarType dtype, Device device) : base(name)
    {
        weight = new Parameter(empty([vocabSize, hiddenSize], dtype, device), requires_grad: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor tokenIds) => weight.index_select(0, tokenIds);
}
