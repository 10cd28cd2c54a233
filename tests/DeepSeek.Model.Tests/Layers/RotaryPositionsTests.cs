using DeepSeek.Model.Configuration;
using DeepSeek.Model.Layers;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Layers;

/// <summary>
/// The rotation matrices (what CUDA uses) against cos and sin (what the CPU uses, and what the
/// reference tests check against transformers): the same rotation, YaRN's magnitude factor included.
/// </summary>
public sealed class RotaryPositionsTests
{
    [Theory]
    [InlineData(Fixtures.V3Tiny)]
    [InlineData(Fixtures.V2LiteTiny)]
    [InlineData(Fixtures.V3Yarn)]
    public void Matrices_rotate_as_cos_and_sin_do(string fixture)
    {
        using var scope = NewDisposeScope();
        var config = DeepSeekConfig.Load(Fixtures.Dir(fixture));
        using var rotary = new RotaryEmbedding(config);
        var positions = tensor(new long[] { 0, 1, 7, 300, 4095 });
        var x = randn([5, 3, config.QkRopeHeadDim], ScalarType.Float64, generator: new Generator(5));
        using var matrices = rotary.Positions(positions, ScalarType.Float64, asMatrices: true);
        using var elementwise = rotary.Positions(positions, ScalarType.Float64, asMatrices: false);

        Assert.True(matrices.IsMatrices);
        Assert.False(elementwise.IsMatrices);
        Assert.True((matrices.Apply(x) - elementwise.Apply(x)).abs().max().item<double>() < 1e-12);
        // A rotation (times YaRN's factor on both parts) keeps each pair's length up to that factor.
        var lengths = x.pow(HeldScalars.Two).sum(-1).sqrt();
        using var attentionFactor = rotary.AttentionFactor.ToScalar();
        Assert.True((matrices.Apply(x).pow(HeldScalars.Two).sum(-1).sqrt() - lengths.mul(attentionFactor)).abs().max().item<double>() < 1e-5); // angles are float32, as in transformers
    }

    [Fact]
    public void On_the_cpu_the_rotation_is_cos_and_sin()
    {
        var config = DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny));
        using var rotary = new RotaryEmbedding(config);
        using var positions = tensor(new long[] { 0, 1 });
        using var table = rotary.Positions(positions, ScalarType.Float32);
        Assert.False(table.IsMatrices);
    }
}
