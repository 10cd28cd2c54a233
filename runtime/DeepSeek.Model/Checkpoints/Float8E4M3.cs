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
        var table = tensor(Values, device: bytes.device);
        return table.index_select(0, bytes.reshape(-1).to(ScalarType.Int64)).view(bytes.shape).MoveToOuterDisposeScope();
    }

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
