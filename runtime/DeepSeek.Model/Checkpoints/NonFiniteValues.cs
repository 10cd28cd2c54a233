using System.Numerics;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace DeepSeek.Model.Checkpoints;

/// <summary>
/// NaN and infinity found in stored bytes: a random checkpoint never holds them, a corrupted one often
/// does. Reading the exponent bits of each block as it is copied costs next to nothing (the block is
/// in cache); a tensor op over the loaded weight (<c>isfinite(t).all()</c>) is another pass over
/// memory, and on the CPU of bf16 weights it was the slowest step of a load by far.
/// </summary>
public static class NonFiniteValues
{
    /// <summary>Whether any value of <paramref name="bytes"/>, stored as <paramref name="stored"/>, has every exponent bit set.</summary>
    public static bool Any(ReadOnlySpan<byte> bytes, ScalarType stored) => stored switch
    {
        ScalarType.BFloat16 => AnyAllSet(MemoryMarshal.Cast<byte, ushort>(bytes), (ushort)0x7F80),
        ScalarType.Float16 => AnyAllSet(MemoryMarshal.Cast<byte, ushort>(bytes), (ushort)0x7C00),
        ScalarType.Float32 => AnyAllSet(MemoryMarshal.Cast<byte, uint>(bytes), 0x7F80_0000u),
        ScalarType.Float64 => AnyAllSet(MemoryMarshal.Cast<byte, ulong>(bytes), 0x7FF0_0000_0000_0000ul),
        _ => false,
    };

    /// <summary>
    /// Whether converting <paramref name="stored"/> to <paramref name="target"/> can turn finite values
    /// into infinities (to float16 from anything wider in range, to float32 or bfloat16 from float64):
    /// then the converted weight is checked too.
    /// </summary>
    public static bool ConversionMayOverflow(ScalarType stored, ScalarType target) => target switch
    {
        ScalarType.Float16 => stored is ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64,
        ScalarType.Float32 or ScalarType.BFloat16 => stored == ScalarType.Float64,
        _ => false,
    };

    private static bool AnyAllSet<T>(ReadOnlySpan<T> values, T exponent) where T : unmanaged, IBinaryInteger<T>
    {
        var mask = new Vector<T>(exponent);
        var found = Vector<T>.Zero;
        var vectors = MemoryMarshal.Cast<T, Vector<T>>(values);
        foreach (var vector in vectors) found |= Vector.Equals(vector & mask, mask);
        if (found != Vector<T>.Zero) return true;
        for (var i = vectors.Length * Vector<T>.Count; i < values.Length; i++)
            if ((values[i] & exponent) == exponent) return true;
        return false;
    }
}
