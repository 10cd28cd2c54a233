using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>The decoder stack (<c>model.*</c> in the checkpoint): embeddings, layers, final norm.</summary>
public sealed class DeepSeekModel : nn.Module<Tensor, AttentionMetadata, MlaKvCache, Tensor>
{
    private readonly TokenEmbedding embed_tokens;
    private readonly ModuleList<DecoderLayer> layers;
    private readonly RmsNorm norm;

    public DeepSeekModel(string name, DeepSeekConfig config, ExpertPlacement placement, int rank, ScalarType dtype, Device device) : base(name)
    {
        embed_tokens = new TokenEmbedding(nameof(embed_tokens), config.VocabSize, config.HiddenSize, dtype, device);
        layers = new ModuleList<DecoderLayer>();
        for (var i = 0; i < config.NumHiddenLayers; i++)
            layers.Add(new DecoderLayer(i.ToString(System.Globalization.CultureInfo.InvariantCulture), i, config, placement, rank, dtype, device));
        Layers = layers.ToList();
        norm = new RmsNorm(nameof(norm), config.HiddenSize, config.RmsNormEps, dtype, device);
        RegisterComponents();
    }

    public IReadOnlyList<DecoderLayer> Layers { get; }

    /// <summary>Hidden states after the last layer, before the final norm: <c>[T, hidden]</c>.</summary>
    public override Tensor forward(Tensor tokenIds, AttentionMetadata batch, MlaKvCache cache)
    {
        using var scope = NewDisposeScope();
        var hidden = embed_tokens.forward(tokenIds);
        for (var i = 0; i < layers.Count; i++)
            hidden = layers[i].forward(hidden, batch, cache.Layer(i));
        return hidden.MoveToOuterDisposeScope();
    }

    public Tensor Norm(Tensor hidden) => norm.forward(hidden);
}
