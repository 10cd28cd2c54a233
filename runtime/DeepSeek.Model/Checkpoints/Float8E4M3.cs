using DeepSeek.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Checkpoints;

/// <summary>
/// The OCP FP8 E4M3 format (<c>float8_e4m3fn</c>, safetensors dtype <c>F8_E4M3</c>) that DeepSeek-V3's
/// published weights use: 1 sign bit, 4 exponent bits with bias 7, 3 mantissa bits; exponent 0 is
/// subnormal (<c>m/8 · 2⁻⁶</c>); no infinities, and only <c>S.1111.111</c> (0x7F, 0xFF) is NaN, so
/// the largest finite value is 448. TorchSharp 0.107 has no float8 scalar type, so bytes are decoded
/// through this 256-entry table.
/// </summary>
public static class Float8E4M3
{
    public const string SafetensorsCode = "F8_E4M3";

    private static readonly float[] Values = BuildTable();

    /// <summary>The value of every byte, indexed by the byte.</summary>
    public static IReadOnlyList<float> Table => Values;

    public static float Decode(byte bits) => Values[bits];

    /// <summary>Decodes uint8 <paramref name="bytes"/> to float32 of the same shape, on their device.</summary>
    public static Tensor Decode(Tensor bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.dtype != ScalarType.Byte) throw new ArgumentException($"FP8 data is read as uint8 bytes, not {bytes.dtype}.", nameof(bytes));
        using var scope = NewDisposeScope();
        return TableOn(bytes.device).index_select(0, bytes.reshape(-1).to(ScalarType.Int64)).view(bytes.shape).MoveToOuterDisposeScope();
    }

    /// <summary>The largest finite value, 0x7E (and 0xFE negated).</summary>
    public const float MaxFinite = 448f;

    /// <summary>
    /// Rounds float values to the nearest E4M3 value (ties to even mantissa, as PyTorch's
    /// <c>to(float8_e4m3fn)</c> does) and returns their bytes; magnitudes beyond
    /// <see cref="MaxFinite"/> saturate to it, so no NaN code is made. With <c>e = clamp(⌊log₂|v|⌋, −6, 8)</c>
    /// and <c>m = round(|v| / 2^(e−3))</c> (8…16 for normal values, 0…7 for subnormal ones) the code
    /// is <c>8e + 48 + m</c>: a normal value's biased exponent <c>e + 7</c> and mantissa <c>m − 8</c>, a
    /// subnormal's mantissa <c>m</c>, and a carry (<c>m = 16</c>) the next exponent's zero mantissa.
    /// </summary>
    public static Tensor Encode(Tensor values)
    {
        ArgumentNullException.ThrowIfNull(values);
        using var scope = NewDisposeScope();
        using var max = MaxFinite.ToScalar();
        using var smallest = (-6).ToScalar();
        using var largest = 8.ToScalar();
        using var eight = 8.ToScalar();
        using var bias = 48.ToScalar();
        using var sign = 128.ToScalar();
        var v = values.to(ScalarType.Float32);
        var magnitude = v.abs().clamp_max(max);
        var exponent = magnitude.log2().floor_().clamp_(smallest, largest);
        var mantissa = magnitude.mul(eight).div_(exponent.exp2()).round_(); // |v| / 2^(e−3)
        var code = exponent.mul(eight).add_(mantissa, HeldScalars.One).add_(bias, HeldScalars.One)
            .add_(v.lt(HeldScalars.ZeroReal).to(ScalarType.Float32).mul_(sign), HeldScalars.One);
        return code.to(ScalarType.Byte).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The table on <paramref name="device"/>, made once per device and kept for the process: decoding
    /// per use (FP8-resident weights) then copies nothing from the host, so a captured graph may decode.
    /// </summary>
    private static Tensor TableOn(Device device)
    {
        lock (Tables)
        {
            var key = device.ToString();
            if (!Tables.TryGetValue(key, out var table))
            {
                table = tensor(Values, device: device);
                table.DetachFromDisposeScope();
                Tables[key] = table;
            }
            return table;
        }
    }

    private static readonly Dictionary<string, Tensor> Tables = [];

    private static float[] BuildTable()
    {
        var table = new float[256];
        for (var bits = 0; bits < 256; bits++)
        {
            var sign = (bits & 0x80) != 0 ? -1f : 1f;
            var exponent = (bits >> 3) & 0xF;
            var mantissa = bits & 0x7;
            table[bits] = (bits & 0x7F) == 0x7F ? float.NaN
                : exponent == 0 ? sign * mantissa / 8f * MathF.Pow(2, -6)
                : sign * (1 + (mantissa / 8f)) * MathF.Pow(2, exponent - 7);
        }
        return table;
    }
}
