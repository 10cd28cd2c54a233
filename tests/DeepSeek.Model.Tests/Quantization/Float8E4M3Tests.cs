using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Quantization;

/// <summary>The E4M3 table against values the format defines and an independent decoder built from float32 bit patterns.</summary>
public sealed class Float8E4M3Tests
{
    [Theory]
    [InlineData(0x00, 0.0f)]
    [InlineData(0x38, 1.0f)]          // exponent 7 (bias 7), mantissa 0
    [InlineData(0xB8, -1.0f)]
    [InlineData(0x3C, 1.5f)]
    [InlineData(0x40, 2.0f)]
    [InlineData(0x34, 0.75f)]
    [InlineData(0x7E, 448.0f)]        // the largest finite value: no infinities in this format
    [InlineData(0xFE, -448.0f)]
    [InlineData(0x08, 0.015625f)]     // smallest normal, 2⁻⁶
    [InlineData(0x07, 0.013671875f)]  // largest subnormal, 7/8 · 2⁻⁶
    [InlineData(0x01, 0.001953125f)]  // smallest subnormal, 2⁻⁹
    [InlineData(0x81, -0.001953125f)]
    public void Known_codes_decode_to_their_values(int bits, float value) =>
        Assert.Equal(value, Float8E4M3.Decode((byte)bits));

    [Fact]
    public void Only_0x7F_and_0xFF_are_NaN_and_nothing_is_infinite()
    {
        var nan = Enumerable.Range(0, 256).Where(b => float.IsNaN(Float8E4M3.Decode((byte)b))).ToArray();
        Assert.Equal([0x7F, 0xFF], nan);
        Assert.DoesNotContain(Float8E4M3.Table, float.IsInfinity);
        Assert.True(Float8E4M3.Decode(0x80) == 0 && float.IsNegative(Float8E4M3.Decode(0x80)), "0x80 is negative zero");
    }

    [Fact]
    public void Every_finite_code_matches_the_bit_pattern_decoder_and_positive_codes_ascend()
    {
        for (var bits = 0; bits < 256; bits++)
            if ((bits & 0x7F) != 0x7F) Assert.Equal(Fp8Checkpoints.ValueOf(bits), Float8E4M3.Decode((byte)bits));
        for (var bits = 1; bits < 0x7F; bits++)
            Assert.True(Float8E4M3.Decode((byte)bits) > Float8E4M3.Decode((byte)(bits - 1)), $"code {bits:X2} does not exceed its predecessor");
    }

    [Fact]
    public void Tensor_decode_equals_the_table()
    {
        using var scope = NewDisposeScope();
        var bytes = HeldScalars.Range(256, CPU).to(ScalarType.Byte).reshape(16, 16);
        var decoded = Float8E4M3.Decode(bytes).reshape(-1).data<float>().ToArray();
        for (var bits = 0; bits < 256; bits++) Assert.Equal(Float8E4M3.Decode((byte)bits), decoded[bits]);
    }
}
