using DeepSeek.Runtime.Experts;
using DeepSeek.Runtime.Grpc.V1;
using Google.Protobuf;
using static TorchSharp.torch;

namespace DeepSeek.Runtime.Tests.Experts;

public class WireTensorsTests
{
    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Int64)]
    public void A_tensor_survives_the_wire_bit_for_bit(ScalarType type)
    {
        using var scope = NewDisposeScope();
        var original = randn(3, 5).mul(100).to(type);
        var wire = WireTensors.Encode(original);
        Assert.Equal([3L, 5L], wire.Shape);
        Assert.Equal(15 * original.ElementSize, wire.Data.Length);
        var back = WireTensors.Decode(wire, CPU);
        Assert.Equal(type, back.dtype);
        Assert.True(original.eq(back).all().item<bool>());
    }

    [Fact]
    public void An_empty_tensor_is_allowed()
    {
        using var scope = NewDisposeScope();
        var back = WireTensors.Decode(WireTensors.Encode(zeros(0, 4)), CPU);
        Assert.Equal([0L, 4L], back.shape);
    }

    [Theory]
    [InlineData("F32", new long[] { 2, 2 }, 15, "needs 16 bytes")]
    [InlineData("Q4", new long[] { 1 }, 1, "Unknown tensor dtype 'Q4'")]
    [InlineData("F32", new long[] { -1, 4 }, 16, "negative dimension")]
    public void A_malformed_tensor_is_a_format_error_naming_the_problem(string dtype, long[] shape, int bytes, string expected)
    {
        var wire = new WireTensor { Dtype = dtype, Data = ByteString.CopyFrom(new byte[bytes]) };
        wire.Shape.AddRange(shape);
        var error = Assert.Throws<FormatException>(() => WireTensors.Decode(wire, CPU));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}
