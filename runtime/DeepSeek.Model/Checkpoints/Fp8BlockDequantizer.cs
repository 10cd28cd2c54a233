using DeepSeek.Model.Configuration;
using static TorchSharp.torch;

namespace DeepSeek.Model.Checkpoints;

/// <summary>
/// Block-scaled FP8 weights to real values: element <c>(i, j)</c> of an <c>[out, in]</c> weight is
/// <c>e4m3(bytes[i, j]) · scale_inv[i / rows, j / columns]</c>; the scale grid is
/// <c>[⌈out/rows⌉, ⌈in/columns⌉]</c>, the last block of a dimension that is not a multiple of the
/// block size being partial. The name <c>scale_inv</c> is the checkpoint's: it is the factor that
/// multiplies back, the inverse of the scale that divided at quantisation.
/// </summary>
public static class Fp8BlockDequantizer
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
    /// <c>[out, in]</c> in <paramref name="precision"/> (float32, or float64 for a float64 model, so that
    /// the product is not rounded to float32 first) from uint8 FP8 <paramref name="bytes"/> and <paramref name="scaleInv"/>.
    /// </summary>
    public static Tensor Dequantize(Tensor bytes, Tensor scaleInv, Fp8BlockQuantization blocks, ScalarType precision = ScalarType.Float32)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentNullException.ThrowIfNull(scaleInv);
        ArgumentNullException.ThrowIfNull(blocks);
        var expected = ScaleShape(bytes.shape, blocks);
        if (!scaleInv.shape.SequenceEqual(expected))
            throw new ArgumentException($"scale_inv is [{string.Join(", ", scaleInv.shape)}]; [{string.Join(", ", bytes.shape)}] needs [{string.Join(", ", expected)}].", nameof(scaleInv));
        using var scope = NewDisposeScope();
        var (rows, columns) = (bytes.shape[0], bytes.shape[1]);
        var perElement = scaleInv.to(precision)
            .repeat_interleave(blocks.BlockRows, 0).narrow(0, 0, rows)
            .repeat_interleave(blocks.BlockColumns, 1).narrow(1, 0, columns);
        return Float8E4M3.Decode(bytes).to(precision).mul_(perElement).MoveToOuterDisposeScope();
    }

    private static long CeilDiv(long value, int block) => (value + block - 1) / block;
}
