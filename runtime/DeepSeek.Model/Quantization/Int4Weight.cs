using DeepSeek.Model.Native;
using static TorchSharp.torch;

namespace DeepSeek.Model.Quantization;

/// <summary>
/// One <c>[N, K]</c> weight held as int4 on the GPU: LibTorch's tiled int4 layout
/// (<c>_convert_weight_to_int4pack</c> through the native helper) and bf16 scales and zeros, multiplied
/// by <c>_weight_int4pack_mm</c>. A quarter of the bf16 weight's bytes plus 4 bytes per group.
/// </summary>
public sealed class Int4Weight : IDisposable
{
    private readonly NativeHelper _helper;

    private Int4Weight(NativeHelper helper, Tensor packed, Tensor scalesAndZeros, int groupSize, long outFeatures, long inFeatures)
    {
        _helper = helper;
        Packed = packed;
        ScalesAndZeros = scalesAndZeros;
        GroupSize = groupSize;
        OutFeatures = outFeatures;
        InFeatures = inFeatures;
    }

    public Tensor Packed { get; }

    public Tensor ScalesAndZeros { get; }

    public int GroupSize { get; }

    public long OutFeatures { get; }

    public long InFeatures { get; }

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

    /// <summary>Quantises a CUDA bf16 weight and packs it for the kernel; the caller checked <see cref="Unsupported"/>.</summary>
    public static Int4Weight Pack(NativeHelper helper, Tensor weight, int groupSize)
    {
        ArgumentNullException.ThrowIfNull(helper);
        ArgumentNullException.ThrowIfNull(weight);
        using var quantized = Int4GroupQuantization.Quantize(weight, groupSize);
        var k = weight.shape[1];
        // The largest K tiling the shape allows (8 × 16, 4 × 16 or 2 × 16 values per tile).
        var innerKTiles = k % 128 == 0 ? 8 : k % 64 == 0 ? 4 : 2;
        var packed = helper.PackInt4(quantized.Packed, innerKTiles).DetachFromDisposeScope();
        var scalesAndZeros = quantized.ScalesAndZeros.clone().DetachFromDisposeScope();
        return new Int4Weight(helper, packed, scalesAndZeros, groupSize, weight.shape[0], k);
    }

    /// <summary><c>input · Wᵀ</c> for bf16 <paramref name="input"/> <c>[…, K]</c>: <c>[…, N]</c>.</summary>
    public Tensor Multiply(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.shape.Length == 2) return _helper.Int4Mm(input.contiguous(), Packed, GroupSize, ScalesAndZeros);
        var leading = input.shape[..^1];
        using var flat = input.reshape(-1, InFeatures).contiguous();
        using var product = _helper.Int4Mm(flat, Packed, GroupSize, ScalesAndZeros);
        return product.view([.. leading, OutFeatures]);
    }

    public void Dispose()
    {
        Packed.Dispose();
        ScalesAndZeros.Dispose();
    }
}
