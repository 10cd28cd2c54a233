using System.Runtime.InteropServices;
using DeepSeek.Model.Checkpoints;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Checkpoints;

public sealed class NonFiniteValuesTests
{
    [Fact]
    public void Every_half_precision_bit_pattern_is_judged_as_the_number_it_is()
    {
        for (var bits = 0; bits <= ushort.MaxValue; bits++)
        {
            ushort[] one = [(ushort)bits];
            var bytes = MemoryMarshal.AsBytes(one.AsSpan());
            Assert.Equal(!Half.IsFinite(BitConverter.UInt16BitsToHalf((ushort)bits)), NonFiniteValues.Any(bytes, ScalarType.Float16));
            // bfloat16 is the upper half of a float32.
            Assert.Equal(!float.IsFinite(BitConverter.Int32BitsToSingle(bits << 16)), NonFiniteValues.Any(bytes, ScalarType.BFloat16));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(17)]
    [InlineData(999)]
    public void Single_and_double_are_found_at_any_position(int position)
    {
        var singles = Enumerable.Repeat(float.MaxValue, 1000).ToArray();
        var doubles = Enumerable.Repeat(-double.Epsilon, 1000).ToArray();
        Assert.False(NonFiniteValues.Any(MemoryMarshal.AsBytes(singles.AsSpan()), ScalarType.Float32));
        Assert.False(NonFiniteValues.Any(MemoryMarshal.AsBytes(doubles.AsSpan()), ScalarType.Float64));
        singles[position] = float.NegativeInfinity;
        doubles[position] = double.NaN;
        Assert.True(NonFiniteValues.Any(MemoryMarshal.AsBytes(singles.AsSpan()), ScalarType.Float32));
        Assert.True(NonFiniteValues.Any(MemoryMarshal.AsBytes(doubles.AsSpan()), ScalarType.Float64));
    }

    [Fact]
    public void Integer_data_is_never_non_finite()
    {
        var bytes = Enumerable.Repeat((byte)0xFF, 64).ToArray();
        Assert.False(NonFiniteValues.Any(bytes, ScalarType.Int32));
        Assert.False(NonFiniteValues.Any(bytes, ScalarType.Byte));
    }

    [Theory]
    [InlineData(ScalarType.Float32, ScalarType.Float16, true)]
    [InlineData(ScalarType.BFloat16, ScalarType.Float16, true)]
    [InlineData(ScalarType.Float64, ScalarType.Float32, true)]
    [InlineData(ScalarType.Float64, ScalarType.BFloat16, true)]
    [InlineData(ScalarType.Float16, ScalarType.Float16, false)]
    [InlineData(ScalarType.BFloat16, ScalarType.BFloat16, false)]
    [InlineData(ScalarType.BFloat16, ScalarType.Float32, false)]
    [InlineData(ScalarType.Float16, ScalarType.BFloat16, false)]
    [InlineData(ScalarType.Float32, ScalarType.Float64, false)]
    public void Conversions_that_narrow_the_range_are_checked_after(ScalarType stored, ScalarType target, bool overflows) =>
        Assert.Equal(overflows, NonFiniteValues.ConversionMayOverflow(stored, target));
}
