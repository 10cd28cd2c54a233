using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Runtime.Tests.Tensors;

/// <summary>
/// Proves the native library loads on this machine: on Debian 12 it only does after the build
/// marks libLibTorchSharp.so's GLIBCXX_3.4.32 need weak (build/LibTorchSharpOnOldLibstdcxx.targets).
/// </summary>
public sealed class TorchSharpLoadsTests
{
    [Fact]
    public void Matmul_on_cpu_matches_hand_computed_product()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new float[] { 1, 2, 3, 4, 5, 6 }, [2, 3]);
        var b = tensor(new float[] { 7, 8, 9, 10, 11, 12 }, [3, 2]);

        var product = a.matmul(b).data<float>().ToArray();

        Assert.Equal(new float[] { 58, 64, 139, 154 }, product);
    }

    [Fact]
    public void Softmax_rows_sum_to_one()
    {
        using var scope = NewDisposeScope();
        var logits = randn(4, 16, generator: new Generator(7));
        var sums = logits.softmax(-1).sum(-1).data<float>().ToArray();
        Assert.All(sums, s => Assert.Equal(1.0f, s, 5));
    }
}
