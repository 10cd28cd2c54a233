using DeepSeek.Model.Experts;
using DeepSeek.Model.Native;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Quantization;

/// <summary>
/// The int4 expert stacks on the CPU: each slot holds its expert's own quantisation in the layout the
/// fused CUDA kernel reads (the kernel itself is checked against these dequantised weights by
/// <c>bench native</c> on a GPU), at int4's bytes.
/// </summary>
public sealed class Int4ExpertsTests
{
    private const int Held = 3, Hidden = 64, Inter = 32, Group = 16;

    [Fact]
    public void Each_slot_dequantises_to_its_own_experts_round_trip_at_int4_bytes()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(5);
        var gateUp = randn([Held, 2 * Inter, Hidden], ScalarType.BFloat16, generator: generator);
        var down = randn([Held, Hidden, Inter], ScalarType.BFloat16, generator: generator);
        using var experts = Int4Experts.Quantize(gateUp, down, Group, kernel: null);

        Assert.False(experts.UsesKernel);
        Assert.Equal(Int4Experts.BytesFor(Held, Hidden, Inter, Group), experts.Bytes);
        // 18,432 values: half a byte each, and a bf16 scale and zero for each of 1,152 groups.
        Assert.Equal(9_216 + 4_608, experts.Bytes);
        for (var slot = 0; slot < Held; slot++)
        {
            using var ownGateUp = Int4GroupQuantization.Quantize(gateUp[slot], Group);
            using var ownDown = Int4GroupQuantization.Quantize(down[slot], Group);
            var (slotGateUp, slotDown) = experts.Dequantize(slot, ScalarType.BFloat16);
            Assert.True(Same(slotGateUp, ownGateUp.Dequantize(ScalarType.BFloat16)), $"slot {slot}'s gate/up");
            Assert.True(Same(slotDown, ownDown.Dequantize(ScalarType.BFloat16)), $"slot {slot}'s down");
            // A different expert's weights would not match: the slots are really distinct.
            if (slot > 0) Assert.False(Same(slotGateUp, experts.Dequantize(slot - 1, ScalarType.BFloat16).GateUp));
        }
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void The_fused_path_needs_the_native_kernel()
    {
        using var scope = NewDisposeScope();
        using var experts = Int4Experts.Quantize(zeros([1, 2 * Inter, Hidden], ScalarType.BFloat16), zeros([1, Hidden, Inter], ScalarType.BFloat16), Group, kernel: null);
        var tokens = new RoutedTokens(0, zeros([1, Hidden], ScalarType.BFloat16), zeros([1, 1], ScalarType.Int64), ones([1, 1]), ones([1], ScalarType.Int64));
        Assert.Throws<InvalidOperationException>(() => experts.ComputeFused(tokens));
    }

    [Theory]
    [InlineData(64, 32, 16, false, null)]
    [InlineData(64, 36, 16, false, "intermediate size 36")]
    [InlineData(72, 32, 16, false, "hidden size 72")]
    [InlineData(60, 30, 6, false, null)]
    [InlineData(60, 30, 6, true, "multiple of 8")]
    public void Shapes_the_group_or_kernel_does_not_fit_are_named(long hidden, long inter, int group, bool kernel, string? reason)
    {
        var actual = Int4Experts.Unsupported(hidden, inter, group, kernel);
        if (reason is null) Assert.Null(actual);
        else Assert.Contains(reason, actual, StringComparison.Ordinal);
    }
}
