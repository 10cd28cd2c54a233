using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// Attention over sequences packed without padding (<see cref="VarlenAttention"/>): <paramref name="query"/>
/// <c>[total queries, H, D]</c>, <paramref name="keys"/> <c>[total context, H, D]</c> and <paramref name="values"/>
/// <c>[total context, H, Dv]</c> (a view; its last dimension contiguous), causal aligned bottom-right
/// (<see cref="VarlenLayout.Sees"/>), scores scaled by <paramref name="scale"/>; returns <c>[total queries, H, Dv]</c>.
/// On CUDA the native helper's FlashAttention-2 (through <see cref="VarlenAttentionKernels.WithValuesPadded"/>)
/// or memory-efficient kernel (<see cref="Native.NativeKernels"/>); tests give a CPU reference.
/// </summary>
internal delegate Tensor VarlenAttentionKernel(Tensor query, Tensor keys, Tensor values, VarlenAttention varlen, double scale);

/// <summary>Adapters between a kernel's own limits and <see cref="VarlenAttentionKernel"/>'s contract.</summary>
internal static class VarlenAttentionKernels
{
    /// <summary>
    /// <paramref name="kernel"/> for values narrower than q·k (MLA: v 128, q·k 192) where it takes one head
    /// dim for all three (FlashAttention-2): v padded with zeros to q's head dim, the output's padded
    /// columns (zero weights' sums: zeros) dropped.
    /// </summary>
    public static VarlenAttentionKernel WithValuesPadded(VarlenAttentionKernel kernel) => (query, keys, values, varlen, scale) =>
    {
        var (width, valueWidth) = (query.shape[^1], values.shape[^1]);
        if (valueWidth == width) return kernel(query, keys, values, varlen, scale);
        var padded = zeros([values.shape[0], values.shape[1], width], values.dtype, values.device);
        padded.narrow(-1, 0, valueWidth).copy_(values);
        return kernel(query, keys, padded, varlen, scale).narrow(-1, 0, valueWidth);
    };
}
