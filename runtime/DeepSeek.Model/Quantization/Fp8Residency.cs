using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using static TorchSharp.torch;

namespace DeepSeek.Model.Quantization;

/// <summary>
/// What a model would hold if it kept a block-scaled FP8 checkpoint's weights as they are stored
/// (the target of issue #25; today the loader dequantises them to the run dtype). The layout is the
/// published one: every linear projection one byte a weight plus a float32 <c>weight_scale_inv</c> per
/// block, the embeddings, norms, router and LM head in bf16.
/// </summary>
public static class Fp8Residency
{
    /// <summary>The published DeepSeek-V3 layout, assumed for a checkpoint that ships unquantised.</summary>
    public static Fp8BlockQuantization Published { get; } = new("e4m3", "dynamic", 128, 128);

    /// <summary>
    /// The bytes <paramref name="module"/> (built in bf16, named <paramref name="name"/>) would hold
    /// itself: its projection weights in FP8 with their block scales, everything else as declared.
    /// </summary>
    public static long HeldBytes(string name, nn.Module module, Fp8BlockQuantization blocks)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(blocks);
        var own = WeightedModule.OwnBytes(module);
        if (module is Linear linear && IsFp8Projection(name))
            return own - (linear.Weight.numel() * linear.Weight.element_size()) + WeightBytes(linear.Weight.shape[0], linear.Weight.shape[1], blocks);
        if (module is RoutedExperts experts)
        {
            // The checkpoint stores each expert's gate, up and down projections apart, each with its
            // own scale grid; the runtime's stacking does not change what FP8 would hold.
            var inter = experts.IntermediateSize;
            var hidden = experts.HiddenSize;
            return experts.HeldExperts.Count * ((2 * WeightBytes(inter, hidden, blocks)) + WeightBytes(hidden, inter, blocks));
        }
        return own;
    }

    /// <summary>An <c>[out, in]</c> weight in FP8: one byte a value plus one float32 scale per block (edge blocks partial).</summary>
    public static long WeightBytes(long outFeatures, long inFeatures, Fp8BlockQuantization blocks)
    {
        var scales = Fp8BlockDequantizer.ScaleShape([outFeatures, inFeatures], blocks);
        return (outFeatures * inFeatures) + (scales[0] * scales[1] * sizeof(float));
    }

    /// <summary>The published checkpoints keep the LM head in bf16 (the router and embeddings are not <see cref="Linear"/>).</summary>
    private static bool IsFp8Projection(string module) => module != "lm_head";
}
