using DeepSeek.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Native;

/// <summary>
/// The native-kernel pass: applied to a loaded model on CUDA, it computes the routed experts with the
/// helper's grouped GEMM wherever it applies (bf16 on CUDA, every expert held, not int4): exact FLOPs
/// and no host synchronisation in the MoE layers, which a captured decode step needs
/// (<see cref="DecodeGraphs"/>); FP8-resident experts and projections with the helper's FP8 kernels
/// (their bytes read once, not dequantised per use); every RMSNorm with its fused kernel; and, in bf16 or
/// fp16, expanded (prefill) attention with FlashAttention-2 over packed sequences
/// (<see cref="DeepSeekForCausalLM.PacksExpandedAttention"/>). Int4
/// experts keep their own kernel (<see cref="Experts.Int4Experts"/>), chosen by the int4 pass. Apply it
/// after that pass.
/// </summary>
public static class NativeKernels
{
    /// <summary>
    /// <c>DEEPSEEK_FLASH_VARLEN</c>: which kernel expanded (prefill) steps attend over packed sequences with
    /// (<c>scripts/gpu/flash_chunks_check.sh</c> compares them). <c>1</c>: FlashAttention-2; <c>efficient</c>: the
    /// memory-efficient kernel's varlen form (v unpadded); unset or anything else: none, SDPA over the padded
    /// view with its mask. Opt-in until the varlen kernels have run on a GPU beside SDPA (docs/gpu.md).
    /// </summary>
    private static readonly string VarlenChoice = Environment.GetEnvironmentVariable("DEEPSEEK_FLASH_VARLEN") ?? "";

    /// <returns>
    /// Tokens up to which a step runs without a host synchronisation in any MoE layer: every count
    /// with the grouped GEMM, <see cref="Experts.Int4Experts.FusedMaxTokens"/> with int4 experts, 0 when
    /// some layer always synchronises (sharded experts, a dtype other than bf16).
    /// </returns>
    public static long Apply(DeepSeekForCausalLM model, NativeHelper helper)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(helper);
        if (!model.IsMaterialised) throw new InvalidOperationException("Use the native kernels after the weights are loaded.");
        foreach (var experts in model.RoutedExperts) experts.UseGroupedKernel(helper);
        foreach (var linear in model.modules().OfType<Linear>().Where(l => l.Fp8 is not null)) linear.UseFp8Kernel(helper);
        foreach (var norm in model.modules().OfType<RmsNorm>()) norm.UseFusedKernel(helper);
        if (model.Device.type == DeviceType.CUDA && model.DType is ScalarType.BFloat16 or ScalarType.Float16 && VarlenKernel(helper, model) is { } varlen)
            (model.VarlenKernel, model.VarlenKernelName) = varlen;
        return model.RoutedExperts.Select(e => e.SyncFreeTokens).DefaultIfEmpty(long.MaxValue).Min();
    }

    /// <summary>
    /// The packed-sequence kernel <see cref="VarlenChoice"/> names, if the model's head dims suit it and one
    /// tiny call of it succeeds on the model's device; null keeps SDPA.
    /// </summary>
    private static (VarlenAttentionKernel Kernel, string Name)? VarlenKernel(NativeHelper helper, DeepSeekForCausalLM model)
    {
        if (VarlenChoice is not ("1" or "efficient")) return null;
        if (VarlenChoice == "efficient")
        {
            VarlenAttentionKernel efficient = (query, keys, values, varlen, scale) => helper.EfficientAttentionVarlen(query, keys, values,
                varlen.CumulativeQueries, varlen.CumulativeContexts, varlen.Layout.MaxQueries, varlen.Layout.MaxContext, causal: true, scale);
            return Runs(efficient, model) ? (efficient, "the memory-efficient kernel over packed sequences (DEEPSEEK_FLASH_VARLEN=efficient)") : null;
        }
        if (!FitsFlash(model.Config)) return null;
        var flash = VarlenAttentionKernels.WithValuesPadded((query, keys, values, varlen, scale) => helper.FlashAttentionVarlen(query, keys, values,
            varlen.CumulativeQueries, varlen.CumulativeContexts, varlen.Layout.MaxQueries, varlen.Layout.MaxContext, causal: true, scale));
        return Runs(flash, model) ? (flash, "FlashAttention-2 over packed sequences (DEEPSEEK_FLASH_VARLEN=1)") : null;
    }

    /// <summary>
    /// FlashAttention-2 takes one head dim, a multiple of 8 up to 256: q·k's (nope + rope) serves, with v
    /// padded up to it, when v is no wider (DeepSeek-V2/V3: 192 and 128).
    /// </summary>
    private static bool FitsFlash(DeepSeek.Model.Configuration.DeepSeekConfig config)
    {
        var headDim = config.QkNopeHeadDim + config.QkRopeHeadDim;
        return headDim % 8 == 0 && headDim <= 256 && config.VHeadDim <= headDim;
    }

    /// <summary>
    /// One tiny call of <paramref name="kernel"/> on the model's device, in its dtype: LibTorch refuses
    /// FlashAttention on a GPU older than Ampere or in a build without it, and then every prefill would
    /// fail; refused here, prefill keeps SDPA (<see cref="DeepSeekForCausalLM.ExpandedAttentionKernel"/> says which).
    /// </summary>
    private static bool Runs(VarlenAttentionKernel kernel, DeepSeekForCausalLM model)
    {
        using var scope = NewDisposeScope();
        try
        {
            var query = zeros([2, 1, 16], model.DType, model.Device);
            var values = zeros([2, 1, 8], model.DType, model.Device);
            var layout = VarlenLayout.Of(new ForwardBatch([0, 0], [0, 1], [new SequenceSpan(0, 2, [0])], BlockSize: 2));
            using var varlen = new VarlenAttention(layout, kernel, model.Device);
            varlen.Attend(query, query, values, 1.0);
            return true;
        }
        catch (NativeHelperException)
        {
            return false;
        }
    }
}
