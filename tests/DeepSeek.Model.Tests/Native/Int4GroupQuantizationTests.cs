using DeepSeek.Model.Modeling;
using DeepSeek.Model.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Native;

/// <summary>The int4 format LibTorch's kernels read, checked on CPU (the GPU kernel itself is checked by <c>bench native</c>).</summary>
public sealed class Int4GroupQuantizationTests
{
    [Fact]
    public void Values_on_the_grid_round_trip_exactly_and_pack_high_nibble_first()
    {
        // One row, one group of 32: values 0..15 twice, so min 0, max 15 → scale 1, zero 8 → q = value.
        var row = Enumerable.Range(0, 32).Select(i => (float)(i % 16)).ToArray();
        using var weight = tensor(row).reshape(1, 32);

        using var quantized = Int4GroupQuantization.Quantize(weight, groupSize: 32);

        Assert.Equal([1L, 16L], quantized.Packed.shape);
        Assert.Equal(ScalarType.Byte, quantized.Packed.dtype);
        var bytes = quantized.Packed.data<byte>().ToArray();
        for (var j = 0; j < 16; j++) Assert.Equal((byte)((row[2 * j] * 16) + row[(2 * j) + 1]), bytes[j]);
        Assert.Equal([1L, 1L, 2L], quantized.ScalesAndZeros.shape);
        Assert.Equal([1f, 8f], quantized.ScalesAndZeros.to(ScalarType.Float32).data<float>().ToArray());
        using var restored = quantized.Dequantize();
        Assert.True(restored.eq(weight).all().item<bool>(), "grid values must dequantise to themselves");
    }

    [Fact]
    public void Random_weights_come_back_within_half_a_step_of_their_group()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(1234);
        var weight = normal(0, 0.02, [48, 256], generator: generator);

        using var quantized = Int4GroupQuantization.Quantize(weight, groupSize: 64);
        var restored = quantized.Dequantize();

        Assert.Equal([4L, 48L, 2L], quantized.ScalesAndZeros.shape);
        var scales = quantized.ScalesAndZeros.to(ScalarType.Float32)[.., .., 0].transpose(0, 1); // [N, groups]
        var error = (restored - weight).abs().reshape(48, 4, 64).amax([2]);
        // Half a quantisation step, plus bf16 rounding of the stored zero (about 0.4% of its value).
        using var half = 0.5.ToScalar();
        using var zeroRounding = 0.004.ToScalar();
        using var tiny = 1e-7.ToScalar();
        var bound = scales.mul(half).Plus(quantized.ScalesAndZeros.to(ScalarType.Float32)[.., .., 1].transpose(0, 1).abs().mul(zeroRounding)).Plus(tiny);
        Assert.True(error.le(bound).all().item<bool>(), $"max error {error.max().item<float>()} exceeds half a step");
        var relative = (restored - weight).norm().item<float>() / weight.norm().item<float>();
        Assert.InRange(relative, 0.01f, 0.2f); // 16 levels: a few percent, never zero (it did quantise)
    }

    [Fact]
    public void Bfloat16_weights_quantise_like_their_float32_values()
    {
        using var scope = NewDisposeScope();
        var weight = normal(0, 0.02, [16, 128], generator: new Generator(7)).to(ScalarType.BFloat16);

        using var fromBf16 = Int4GroupQuantization.Quantize(weight);
        using var fromFloat = Int4GroupQuantization.Quantize(weight.to(ScalarType.Float32));

        Assert.True(fromBf16.Packed.eq(fromFloat.Packed).all().item<bool>());
        Assert.True(fromBf16.ScalesAndZeros.eq(fromFloat.ScalesAndZeros).all().item<bool>());
        Assert.Equal(ScalarType.BFloat16, fromBf16.Dequantize(ScalarType.BFloat16).dtype);
    }

    [Fact]
    public void Shapes_the_kernel_cannot_take_are_refused()
    {
        using var scope = NewDisposeScope();
        Assert.Throws<ArgumentException>(() => Int4GroupQuantization.Quantize(zeros(4, 100), groupSize: 128));
        Assert.Throws<ArgumentException>(() => Int4GroupQuantization.Quantize(zeros(4, 2, 128)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Int4GroupQuantization.Quantize(zeros(4, 128), groupSize: 3));
    }
}
