using DeepSeek.Model.Configuration;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Checkpoints;

/// <summary>
/// Block-scaled FP8 weights to real values: element <c>(i, j)</c> of an <c>[out, in]</c> weight is
/// <c>e4m3(bytes[i, j]) · scale_inv[i / rows, j / columns]</c>; the scale grid is
/// <c>[⌈out/rows⌉, ⌈in/columns⌉]</c>, the last block of a dimension that is not a multiple of the
/// block size being partial. The name <c>scale_inv</c> is the checkpoint's: it is the factor that
/// multiplies back, the inverse of the scale that divided at quantisation. <see cref="Quantize"/>
/// makes the same layout from real values (<c>--quantization fp8</c> of a bf16 checkpoint).
/// </summary>
public static class Fp8BlockWeights
{
    public static long[] ScaleShape(long[] weightShape, Fp8BlockQuantization blocks)
    {
        ArgumentNullException.ThrowIfNull(weightShape);
        ArgumentNullException.ThrowIfNull(blocks);
        if (weightShape.Length != 2)
            throw new CheckpointFormatException($"block-scaled FP8 weights are 2-D [out, in], not [{string.Join(", ", weightShape)}].");
        return [CeilDiv(weightShape[0], blocks.BlockRows), CeilDiv(weightShape[1], blocks.BlockColumns)];
    }

    /// <summary>
    /// <c>[…, out, in]</c> in <paramref name="precision"/> (float32, or float64 for a float64 model, so that
    /// the product is not rounded to float32 first) from uint8 FP8 <paramref name="bytes"/> and
    /// <paramref name="scaleInv"/> <c>[…, ⌈out/rows⌉, ⌈in/columns⌉]</c>; leading dimensions (a stack of
    /// experts) are carried through. Makes no host-to-device copy, so a captured CUDA graph may hold it.
    /// </summary>
    public static Tensor Dequantize(Tensor bytes, Tensor scaleInv, Fp8BlockQuantization blocks, ScalarType precision = ScalarType.Float32)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentNullException.ThrowIfNull(scaleInv);
        ArgumentNullException.ThrowIfNull(blocks);
        if (bytes.dim() < 2) throw new CheckpointFormatException($"block-scaled FP8 weights are [out, in], not [{string.Join(", ", bytes.shape)}].");
        var (rows, columns) = (bytes.shape[^2], bytes.shape[^1]);
        long[] expected = [.. bytes.shape[..^2], .. ScaleShape([rows, columns], blocks)];
        if (!scaleInv.shape.SequenceEqual(expected))
            throw new ArgumentException($"scale_inv is [{string.Join(", ", scaleInv.shape)}]; [{string.Join(", ", bytes.shape)}] needs [{string.Join(", ", expected)}].", nameof(scaleInv));
        using var scope = NewDisposeScope();
        var perElement = scaleInv.to(precision)
            .repeat_interleave(blocks.BlockRows, -2).narrow(-2, 0, rows)
            .repeat_interleave(blocks.BlockColumns, -1).narrow(-1, 0, columns);
        return Float8E4M3.Decode(bytes).to(precision).mul_(perElement).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="Dequantize"/> in float32 (float64 for <paramref name="dtype"/> float64) rounded once to
    /// <paramref name="dtype"/>: the weight an FP8-resident layer uses, equal to what dequantising at load holds.
    /// </summary>
    public static Tensor DequantizeTo(Tensor bytes, Tensor scaleInv, Fp8BlockQuantization blocks, ScalarType dtype)
    {
        using var scaled = Dequantize(bytes, scaleInv, blocks, dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32);
        return scaled.to(dtype);
    }

    /// <summary>
    /// Real <c>[out, in]</c> <paramref name="weight"/> to uint8 E4M3 bytes and float32 <c>scale_inv</c>
    /// blocks, as DeepSeek-V3's weights were made: each block's scale is its largest magnitude over
    /// <see cref="Float8E4M3.MaxFinite"/> (1 for an all-zero block), so the block's values span the
    /// format, and each value is rounded to the nearest E4M3 value after dividing by it.
    /// </summary>
    public static (Tensor Bytes, Tensor ScaleInv) Quantize(Tensor weight, Fp8BlockQuantization blocks)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(blocks);
        var grid = ScaleShape(weight.shape, blocks);
        using var scope = NewDisposeScope();
        var (rows, columns) = (weight.shape[0], weight.shape[1]);
        var padded = nn.functional.pad(weight.to(ScalarType.Float32),
            [0, (grid[1] * blocks.BlockColumns) - columns, 0, (grid[0] * blocks.BlockRows) - rows]);
        var amax = padded.abs().view(grid[0], blocks.BlockRows, grid[1], blocks.BlockColumns).amax([1, 3]);
        using var max = Float8E4M3.MaxFinite.ToScalar();
        var scaleInv = amax.div(max).masked_fill_(amax.eq(Modeling.HeldScalars.ZeroReal), Modeling.HeldScalars.OneReal);
        var perElement = scaleInv
            .repeat_interleave(blocks.BlockRows, 0).narrow(0, 0, rows)
            .repeat_interleave(blocks.BlockColumns, 1).narrow(1, 0, columns);
        var bytes = Float8E4M3.Encode(weight.to(ScalarType.Float32).div(perElement));
        return (bytes.MoveToOuterDisposeScope(), scaleInv.MoveToOuterDisposeScope());
    }

    private static long CeilDiv(long value, int block) => (value + block - 1) / block;
}
