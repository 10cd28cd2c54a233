using DeepSeek.Model.Native;
using static TorchSharp.torch;

namespace DeepSeek.Model.Quantization;

/// <summary>
/// One <c>[N, K]</c> weight held as int4 (<see cref="Int4GroupQuantization"/>'s format): 4-bit values
/// and a bf16 scale and zero per group. With the native helper (CUDA) the values are in LibTorch's tiled
/// layout (<c>_convert_weight_to_int4pack</c>) and multiplied by <c>_weight_int4pack_mm</c>; without it
/// (the CPU reference path) they stay as packed nibbles and each product dequantises the weight to the
/// input's dtype first — what the kernel computes, at bf16 cost per use. Either way the weight takes a
/// quarter of its bf16 bytes plus 4 bytes per group.
/// </summary>
public sealed class Int4Weight : IDisposable
{
    private readonly NativeHelper? _helper;
    private readonly Int4GroupQuantization? _reference;

    private Int4Weight(NativeHelper? helper, Int4GroupQuantization? reference, Tensor packed, Tensor scalesAndZeros, int groupSize, long outFeatures, long inFeatures)
    {
        _helper = helper;
        _reference = reference;
        Packed = packed;
        ScalesAndZeros = scalesAndZeros;
        GroupSize = groupSize;
        OutFeatures = outFeatures;
        InFeatures = inFeatures;
    }

    /// <summary>The 4-bit values: the kernel's tiled layout with the helper, else uint8 <c>[N, K/2]</c> nibbles.</summary>
    public Tensor Packed { get; }

    public Tensor ScalesAndZeros { get; }

    public int GroupSize { get; }

    public long OutFeatures { get; }

    public long InFeatures { get; }

    /// <summary>True when products run LibTorch's int4 kernel, false on the dequantise-per-use reference path.</summary>
    public bool UsesKernel => _helper is not null;

    public long Bytes => (Packed.numel() * Packed.element_size()) + (ScalesAndZeros.numel() * ScalesAndZeros.element_size());

    /// <summary>Bytes of an <c>[N, K]</c> weight as int4: half a byte per value, a bf16 scale and zero per group.</summary>
    public static long BytesFor(long outFeatures, long inFeatures, int groupSize) =>
        (outFeatures * inFeatures / 2) + (inFeatures / groupSize * outFeatures * 2 * 2);

    /// <summary>
    /// Why <c>[N, K]</c> cannot be held as int4 with <paramref name="groupSize"/>, or null when it can.
    /// The group must divide K; the kernel also needs N a multiple of 8 and K a multiple of 32 (its
    /// smallest K tile, 2 × 16).
    /// </summary>
    public static string? Unsupported(long outFeatures, long inFeatures, int groupSize, bool kernel)
    {
        if (inFeatures % groupSize != 0) return $"in_features {inFeatures} is not a multiple of the int4 group size {groupSize}";
        if (kernel && outFeatures % 8 != 0) return $"out_features {outFeatures} is not a multiple of 8, as the int4 kernel needs";
        if (kernel && inFeatures % 32 != 0) return $"in_features {inFeatures} is not a multiple of 32, as the int4 kernel needs";
        return null;
    }

    /// <summary>
    /// Quantises <paramref name="weight"/> on its device, packed for the kernel when <paramref name="helper"/>
    /// is given; the caller checked <see cref="Unsupported"/>. The result owns its tensors (outside any dispose scope).
    /// </summary>
    public static Int4Weight Quantize(Tensor weight, int groupSize, NativeHelper? helper)
    {
        ArgumentNullException.ThrowIfNull(weight);
        var (n, k) = (weight.shape[0], weight.shape[1]);
        var quantized = Int4GroupQuantization.Quantize(weight, groupSize);
        quantized.Packed.DetachFromDisposeScope();
        quantized.ScalesAndZeros.DetachFromDisposeScope();
        if (helper is null) return new Int4Weight(null, quantized, quantized.Packed, quantized.ScalesAndZeros, groupSize, n, k);
        using (quantized)
        {
            // The largest K tiling the shape allows (8 × 16, 4 × 16 or 2 × 16 values per tile).
            var innerKTiles = k % 128 == 0 ? 8 : k % 64 == 0 ? 4 : 2;
            var packed = helper.PackInt4(quantized.Packed, innerKTiles).DetachFromDisposeScope();
            var scalesAndZeros = quantized.ScalesAndZeros.clone().DetachFromDisposeScope();
            return new Int4Weight(helper, null, packed, scalesAndZeros, groupSize, n, k);
        }
    }

    /// <summary><c>input · Wᵀ</c> for <paramref name="input"/> <c>[…, K]</c> (bf16 for the kernel): <c>[…, N]</c>.</summary>
    public Tensor Multiply(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (_reference is not null)
        {
            using var weight = _reference.Dequantize(input.dtype);
            return nn.functional.linear(input, weight);
        }
        if (input.shape.Length == 2) return _helper!.Int4Mm(input.contiguous(), Packed, GroupSize, ScalesAndZeros);
        var leading = input.shape[..^1];
        using var flat = input.reshape(-1, InFeatures).contiguous();
        using var product = _helper!.Int4Mm(flat, Packed, GroupSize, ScalesAndZeros);
        return product.view([.. leading, OutFeatures]);
    }

    public void Dispose()
    {
        Packed.Dispose();
        ScalesAndZeros.Dispose();
    }
}
