using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using static TorchSharp.torch;

namespace DeepSeek.Model.Quantization;

/// <summary>
/// FP8-resident weights (<c>--quantization fp8</c>): the projections and routed experts held in the
/// block-scaled FP8 layout DeepSeek-V3 publishes, one byte a weight plus a float32 <c>weight_scale_inv</c>
/// per block, and dequantised into a temporary of the run dtype at each use (one layer's at most);
/// the embeddings, norms, router, LM head and <c>kv_b_proj</c> (whose weight the decode form of
/// attention reads as a matrix) stay in the run dtype. An FP8 checkpoint's layers are declared FP8
/// before loading (<see cref="Declare"/>), so its bytes are copied as they are and nothing wider is
/// allocated; a bf16 checkpoint's are quantised once loaded (<see cref="Quantize"/>). Also what a
/// model would hold so (<see cref="HeldBytes"/>, for the memory plan).
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
        if (module is Linear linear && WeightQuantization.HoldsQuantised(name))
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
        var scales = Fp8BlockWeights.ScaleShape([outFeatures, inFeatures], blocks);
        return (outFeatures * inFeatures) + (scales[0] * scales[1] * sizeof(float));
    }

    /// <summary>
    /// The passes <see cref="DeepSeekForCausalLM.Load"/> applies for <paramref name="quantization"/>: for
    /// fp8, <c>Declare</c> before loading an FP8 checkpoint (<paramref name="config"/> has its
    /// quantization_config) or <c>Quantize</c> after loading any other; nulls otherwise.
    /// </summary>
    public static (Action<DeepSeekForCausalLM>? BeforeLoad, Action<DeepSeekForCausalLM>? AfterLoad) Passes(WeightQuantization quantization, string directory, DeepSeekConfig config)
    {
        ArgumentNullException.ThrowIfNull(quantization);
        ArgumentNullException.ThrowIfNull(config);
        if (!quantization.IsFp8) return (null, null);
        return config.Quantization is { } blocks ? (model => Declare(model, directory, blocks), null) : (null, model => Quantize(model, Published));
    }

    /// <summary>
    /// Declares every projection and expert stack that the checkpoint in <paramref name="directory"/>
    /// stores as F8_E4M3 as FP8-resident (a pass before materialising, after the expert-parallel shard).
    /// </summary>
    public static void Declare(DeepSeekForCausalLM model, string directory, Fp8BlockQuantization blocks)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(blocks);
        using var checkpoint = SafetensorsCheckpoint.Open(directory);
        bool StoredFp8(string tensor) => checkpoint.Contains(tensor) && checkpoint.Info(tensor).Dtype == Float8E4M3.SafetensorsCode;
        foreach (var (name, module) in model.named_modules())
        {
            if (module is Linear linear && WeightQuantization.HoldsQuantised(name) && StoredFp8($"{name}.weight")) linear.DeclareFp8(blocks);
            else if (module is RoutedExperts experts && experts.HeldExperts.Count > 0 && StoredFp8($"{name}.{experts.HeldExperts[0]}.gate_proj.weight")) experts.DeclareFp8(blocks);
        }
        model.Quantization = WeightQuantization.Fp8;
    }

    /// <summary>Quantises a loaded model's projections and routed experts to FP8 <paramref name="blocks"/> (a pass after materialising).</summary>
    public static void Quantize(DeepSeekForCausalLM model, Fp8BlockQuantization blocks)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(blocks);
        if (!model.IsMaterialised) throw new InvalidOperationException("Quantise after the weights are loaded.");
        using var noGrad = no_grad();
        foreach (var (name, module) in model.named_modules())
        {
            if (module is Linear linear && WeightQuantization.HoldsQuantised(name) && linear.Fp8 is null) linear.QuantizeFp8(blocks);
            else if (module is RoutedExperts experts && experts.Fp8 is null) experts.QuantizeFp8(blocks);
        }
        model.Quantization = WeightQuantization.Fp8;
    }
}
