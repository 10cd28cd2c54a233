using DeepSeek.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Native;

/// <summary>
/// A weight <c>[N, K]</c> quantised to 4 bits per value with one scale and one zero per group of
/// <see cref="GroupSize"/> consecutive values of a row (asymmetric min/max, as gpt-fast and LibTorch's
/// int4 kernels define it): <c>w ≈ (q − 8) · scale + zero</c>, <c>q ∈ [0, 15]</c>. Laid out as LibTorch's
/// int4 kernels take it: <see cref="Packed"/> uint8 <c>[N, K/2]</c> (value <c>2j</c> in the high nibble of
/// byte <c>j</c>) for <c>_convert_weight_to_int4pack</c>, and <see cref="ScalesAndZeros"/> bf16
/// <c>[K/group, N, 2]</c>. Pure tensor code: runs on CPU (the reference path) and on the GPU.
/// </summary>
public sealed class Int4GroupQuantization : IDisposable
{
    private const int Levels = 15;
    private const int Midpoint = 8;

    // Held for the process: no LibTorch call here takes a temporary Scalar (Modeling.HeldScalars says why).
    private static readonly Scalar LevelsScalar = Levels.ToScalar();
    private static readonly Scalar MidpointScalar = Midpoint.ToScalar();
    private static readonly Scalar SmallestRange = 1e-6.ToScalar();
    private static readonly Scalar NibbleBase = 16.ToScalar();  // high nibble · 16 + low nibble (TorchSharp's shifts and masks convert their own Scalars)

    private Int4GroupQuantization(Tensor packed, Tensor scalesAndZeros, int groupSize)
    {
        Packed = packed;
        ScalesAndZeros = scalesAndZeros;
        GroupSize = groupSize;
    }

    public Tensor Packed { get; }

    public Tensor ScalesAndZeros { get; }

    public int GroupSize { get; }

    public long OutFeatures => Packed.shape[0];

    public long InFeatures => 2 * Packed.shape[1];

    /// <summary>Quantises <paramref name="weight"/> <c>[N, K]</c>; K must be a multiple of <paramref name="groupSize"/>, which must be even.</summary>
    public static Int4GroupQuantization Quantize(Tensor weight, int groupSize = 128)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.dim() != 2) throw new ArgumentException($"An int4 weight is 2-D [out, in], not {weight.dim()}-D.", nameof(weight));
        if (groupSize < 2 || groupSize % 2 != 0) throw new ArgumentOutOfRangeException(nameof(groupSize), groupSize, "The group size must be even.");
        var (n, k) = (weight.shape[0], weight.shape[1]);
        if (k % groupSize != 0)
            throw new ArgumentException($"The input dimension {k} is not a multiple of the group size {groupSize}.", nameof(weight));

        using var scope = NewDisposeScope();
        var groups = weight.to(ScalarType.Float32).reshape(n * (k / groupSize), groupSize);
        var min = groups.amin([1], keepdim: true);
        var max = groups.amax([1], keepdim: true);
        // Scales and zeros are stored in bf16; quantise against the stored values so that dequantising
        // reproduces what the kernel computes.
        var scales = max.sub(min).clamp_min(SmallestRange).div(LevelsScalar).to(ScalarType.BFloat16).to(ScalarType.Float32);
        var zeros = min.Plus(scales.mul(MidpointScalar)).to(ScalarType.BFloat16).to(ScalarType.Float32);
        var q = groups.sub(zeros.sub(scales.mul(MidpointScalar))).div(scales).round().clamp(HeldScalars.Zero, LevelsScalar).to(ScalarType.Int32).reshape(n, k);
        var packed = q[.., TensorIndex.Slice(0, null, 2)].mul(NibbleBase).Plus(q[.., TensorIndex.Slice(1, null, 2)]).to(ScalarType.Byte);
        var scalesAndZeros = cat([scales, zeros], 1).reshape(n, k / groupSize, 2).transpose(0, 1).contiguous().to(ScalarType.BFloat16);
        return new Int4GroupQuantization(packed.MoveToOuterDisposeScope(), scalesAndZeros.MoveToOuterDisposeScope(), groupSize);
    }

    /// <summary>The weight the kernel multiplies by: <c>(q − 8) · scale + zero</c>, <c>[N, K]</c> in <paramref name="dtype"/>.</summary>
    public Tensor Dequantize(ScalarType dtype = ScalarType.Float32) => Dequantize(Packed, ScalesAndZeros, GroupSize, dtype);

    /// <summary>
    /// <see cref="Dequantize(ScalarType)"/> of a weight held in this layout elsewhere (one expert of a stack):
    /// <paramref name="packed"/> uint8 <c>[N, K/2]</c>, <paramref name="scalesAndZeros"/> bf16 <c>[K/group, N, 2]</c>.
    /// </summary>
    public static Tensor Dequantize(Tensor packed, Tensor scalesAndZeros, int groupSize, ScalarType dtype)
    {
        ArgumentNullException.ThrowIfNull(packed);
        ArgumentNullException.ThrowIfNull(scalesAndZeros);
        using var scope = NewDisposeScope();
        var (n, k) = (packed.shape[0], 2 * packed.shape[1]);
        var bytes = packed.to(ScalarType.Int32);
        var q = stack([bytes.floor_divide(NibbleBase), bytes.remainder(NibbleBase)], 2).reshape(n, k / groupSize, groupSize).to(ScalarType.Float32);
        var perRow = scalesAndZeros.to(ScalarType.Float32).transpose(0, 1); // [N, K/group, 2]
        var scales = perRow[.., .., 0].unsqueeze(2);
        var zeros = perRow[.., .., 1].unsqueeze(2);
        return q.sub(MidpointScalar).mul(scales).Plus(zeros).reshape(n, k).to(dtype).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Packed.Dispose();
        ScalesAndZeros.Dispose();
    }
}
