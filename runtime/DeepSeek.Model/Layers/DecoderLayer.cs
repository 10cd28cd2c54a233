using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Layers;

/// <summary>Pre-norm transformer block: <c>x + attn(norm(x))</c>, then <c>x + mlp(norm(x))</c>.</summary>
public sealed class DecoderLayer : nn.Module<Tensor, AttentionMetadata, Tensor, Tensor>
{
    private readonly RmsNorm input_layernorm;
    private readonly MlaAttention self_attn;
    private readonly RmsNorm post_attention_layernorm;
    private readonly nn.Module<Tensor, Tensor> mlp;

    public DecoderLayer(string name, int layerIndex, DeepSeekConfig config, ExpertPlacement placement, int rank, ScalarType dtype, Device device) : base(name)
    {
        input_layernorm = new RmsNorm(nameof(input_layernorm), config.HiddenSize, config.RmsNormEps, dtype, device);
        self_attn = new MlaAttention(nameof(self_attn), config, dtype, device);
        post_attention_layernorm = new RmsNorm(nameof(post_attention_layernorm), config.HiddenSize, config.RmsNormEps, dtype, device);
        mlp = config.IsMoeLayer(layerIndex)
            ? new MoeLayer(nameof(mlp), layerIndex, config, placement, rank, dtype, device)
            : new DenseMlp(nameof(mlp), config.HiddenSize, config.IntermediateSize, dtype, device);
        RegisterComponents();
    }

    /// <summary>The MoE block of this layer, or null for a dense layer.</summary>
    public MoeLayer? Moe => mlp as MoeLayer;

    public override Tensor forward(Tensor hidden, AttentionMetadata batch, Tensor cache)
    {
        using var scope = NewDisposeScope();
        var attended = hidden + self_attn.forward(input_layernorm.forward(hidden), batch, cache);
        var output = attended + mlp.forward(post_attention_layernorm.forward(attended));
        return output.MoveToOuterDisposeScope();
    }
}
