using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Layers;

/// <summary>
/// Multi-head latent attention. Each token is compressed to a latent <c>c</c> (after
/// <c>kv_a_layernorm</c>) plus one shared roped key part; both go to the <see cref="MlaKvCache"/>.
/// <c>kv_b_proj</c> is absorbed rather than expanded: queries are mapped into latent space
/// (<c>q·W_UK</c>), scores are taken against cached latents, and the weighted latent sum is mapped
/// out by <c>W_UV</c>. A decode step therefore reads the cache once and never re-expands past
/// tokens into per-head K and V, so one new token costs one token of work plus one pass over its context.
/// </summary>
public sealed class MlaAttention : nn.Module<Tensor, AttentionMetadata, Tensor, Tensor>
{
    private readonly Projection? q_proj;
    private readonly Projection? q_a_proj;
    private readonly RmsNorm? q_a_layernorm;
    private readonly Projection? q_b_proj;
    private readonly Projection kv_a_proj_with_mqa;
    private readonly RmsNorm kv_a_layernorm;
    private readonly Projection kv_b_proj;
    private readonly Projection o_proj;

    private readonly int _heads;
    private readonly int _nope;
    private readonly int _rope;
    private readonly int _value;
    private readonly int _latent;
    private readonly double _scale;

    public MlaAttention(string name, DeepSeekConfig config, ScalarType dtype, Device device) : base(name)
    {
        _heads = config.NumAttentionHeads;
        _nope = config.QkNopeHeadDim;
        _rope = config.QkRopeHeadDim;
        _value = config.VHeadDim;
        _latent = config.KvLoraRank;
        _scale = config.SoftmaxScale;
        var hidden = config.HiddenSize;
        var bias = config.AttentionBias;
        if (config.QLoraRank is { } qRank)
        {
            q_a_proj = new Projection(nameof(q_a_proj), hidden, qRank, bias, dtype, device);
            q_a_layernorm = new RmsNorm(nameof(q_a_layernorm), qRank, config.RmsNormEps, dtype, device);
            q_b_proj = new Projection(nameof(q_b_proj), qRank, _heads * config.QkHeadDim, false, dtype, device);
        }
        else
        {
            q_proj = new Projection(nameof(q_proj), hidden, _heads * config.QkHeadDim, false, dtype, device);
        }
        kv_a_proj_with_mqa = new Projection(nameof(kv_a_proj_with_mqa), hidden, _latent + _rope, bias, dtype, device);
        kv_a_layernorm = new RmsNorm(nameof(kv_a_layernorm), _latent, config.RmsNormEps, dtype, device);
        kv_b_proj = new Projection(nameof(kv_b_proj), _latent, _heads * (_nope + _value), false, dtype, device);
        o_proj = new Projection(nameof(o_proj), _heads * _value, hidden, bias, dtype, device);
        RegisterComponents();
    }

    /// <param name="hidden"><c>[T, hidden]</c>, already normalised.</param>
    /// <param name="batch">Per-forward metadata shared by all layers.</param>
    /// <param name="cache">This layer's <c>[slots, kv_lora_rank + qk_rope_head_dim]</c> cache.</param>
    public override Tensor forward(Tensor hidden, AttentionMetadata batch, Tensor cache)
    {
        using var scope = NewDisposeScope();
        var tokens = hidden.shape[0];

        var q = q_proj is not null
            ? q_proj.forward(hidden)
            : q_b_proj!.forward(q_a_layernorm!.forward(q_a_proj!.forward(hidden)));
        q = q.view(tokens, _heads, _nope + _rope);
        var qNope = q.narrow(-1, 0, _nope);
        var qRope = RotaryEmbedding.Apply(q.narrow(-1, _nope, _rope), batch.Cos, batch.Sin);

        var compressed = kv_a_proj_with_mqa.forward(hidden);
        var latent = kv_a_layernorm.forward(compressed.narrow(-1, 0, _latent));
        var kRope = RotaryEmbedding.Apply(compressed.narrow(-1, _latent, _rope).unsqueeze(1), batch.Cos, batch.Sin).squeeze(1);
        cache.index_copy_(0, batch.SlotMapping, cat([latent, kRope], -1));

        // kv_b_proj.weight is [heads · (nope + v), latent]: per head W_UK [nope, latent] and W_UV [v, latent].
        var wkv = kv_b_proj.Weight.view(_heads, _nope + _value, _latent);
        var wUk = wkv.narrow(1, 0, _nope);
        var wUv = wkv.narrow(1, _nope, _value);
        var qLatent = bmm(qNope.transpose(0, 1), wUk).transpose(0, 1);          // [T, H, latent]
        var query = cat([qLatent, qRope], -1);                                       // [T, H, latent + rope]

        var s = batch.SequenceCount;
        var paddedQuery = query.index_select(0, batch.QueryRows).view(s, batch.MaxQueries * _heads, _latent + _rope);
        var context = cache.index_select(0, batch.ContextSlots).view(s, batch.MaxContext, _latent + _rope);
        var scores = bmm(paddedQuery, context.transpose(1, 2)).mul_(_scale)
            .view(s, batch.MaxQueries, _heads, batch.MaxContext)
            .masked_fill(batch.Masked, double.NegativeInfinity);
        var probabilities = scores.dtype is ScalarType.Float16 or ScalarType.BFloat16
            ? scores.softmax(-1, ScalarType.Float32).to(scores.dtype)
            : scores.softmax(-1);
        var attended = bmm(probabilities.view(s, batch.MaxQueries * _heads, batch.MaxContext), context.narrow(-1, 0, _latent))
            .view(s * batch.MaxQueries, _heads, _latent)
            .index_select(0, batch.UnpadRows);                                       // [T, H, latent]
        var values = bmm(attended.transpose(0, 1), wUv.transpose(1, 2))              // [H, T, v]
            .transpose(0, 1).reshape(tokens, _heads * _value);
        return o_proj.forward(values).MoveToOuterDisposeScope();
    }
}
