using DeepSeek.Model.Configuration;
using static TorchSharp.torch;

namespace DeepSeek.Model.Layers;

/// <summary>
/// Rotary position embedding of the decoupled rope part of MLA, with DeepSeek's interleaved layout
/// (rotated pairs are adjacent dimensions) and optional YaRN scaling. Frequencies and angles are
/// computed in float32, as transformers does, then cast to the model's dtype.
/// </summary>
public sealed class RotaryEmbedding : IDisposable
{
    private readonly float[] _inverseFrequencies;
    private Tensor? _inverseOnDevice;

    /// <summary>YaRN's magnitude factor on cos and sin (1 without scaling).</summary>
    public double AttentionFactor { get; }

    public int Dimension { get; }

    public RotaryEmbedding(DeepSeekConfig config)
    {
        Dimension = config.QkRopeHeadDim;
        (_inverseFrequencies, AttentionFactor) = Frequencies(config.Rope, Dimension, config.MaxPositionEmbeddings);
    }

    public IReadOnlyList<float> InverseFrequencies => _inverseFrequencies;

    internal static (float[] InverseFrequencies, double AttentionFactor) Frequencies(RopeScaling rope, int dim, int maxPositions)
    {
        using var scope = NewDisposeScope();
        // base^(2i/dim) in float32 exactly as transformers computes it.
        var exponents = arange(0, dim, 2, ScalarType.Int64).to(ScalarType.Float32) / dim;
        var positionFrequencies = pow(tensor((float)rope.Theta), exponents);
        var extrapolation = 1.0f / positionFrequencies;
        if (!rope.IsYarn) return (extrapolation.data<float>().ToArray(), 1.0);

        var factor = rope.Factor;
        var original = rope.OriginalMaxPositionEmbeddings ?? maxPositions;
        var attentionFactor = rope.AttentionFactor
            ?? (rope.Mscale != 0 && rope.MscaleAllDim != 0
                ? RopeScaling.YarnMscale(factor, rope.Mscale) / RopeScaling.YarnMscale(factor, rope.MscaleAllDim)
                : RopeScaling.YarnMscale(factor, 1.0));

        double CorrectionDim(double rotations) =>
            dim * Math.Log(original / (rotations * 2 * Math.PI)) / (2 * Math.Log(rope.Theta));
        var low = CorrectionDim(rope.BetaFast);
        var high = CorrectionDim(rope.BetaSlow);
        if (rope.Truncate)
        {
            low = Math.Floor(low);
            high = Math.Ceiling(high);
        }
        low = Math.Max(low, 0);
        high = Math.Min(high, dim - 1);
        if (low == high) high += 0.001;

        var interpolation = 1.0f / (positionFrequencies * (float)factor);
        var ramp = ((arange(0, dim / 2, 1, ScalarType.Float32) - (float)low) / (float)(high - low)).clamp(0, 1);
        var extrapolationWeight = 1 - ramp;
        var inverse = interpolation * (1 - extrapolationWeight) + extrapolation * extrapolationWeight;
        return (inverse.data<float>().ToArray(), attentionFactor);
    }

    /// <summary>
    /// Each token's rotation of a <c>dim</c>-vector as a <c>[dim, dim]</c> matrix, <c>[T, dim, dim]</c>:
    /// pair (2i, 2i+1) is turned by angle i (YaRN's magnitude factor included) and written to
    /// columns i and dim/2 + i, the half-split layout of <see cref="Apply"/>. As a matrix the rotation
    /// is one batched product per use instead of seven elementwise launches, and it is built once per
    /// forward for every layer; each output is two products summed in the product's accumulator and
    /// rounded once.
    /// </summary>
    public Tensor Rotations(Tensor positions, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var angles = positions.to(ScalarType.Float32).unsqueeze(1) * InverseOn(positions.device).unsqueeze(0);
        var cos = diag_embed((angles.cos() * AttentionFactor).to(dtype));           // [T, dim/2, dim/2]
        var sin = diag_embed((angles.sin() * AttentionFactor).to(dtype));
        // [T, i, r, c, j]: row 2i + r, column c · dim/2 + j, non-zero where j = i.
        var rotation = stack([stack([cos, sin], 2), stack([sin.neg(), cos], 2)], 2);
        var tokens = positions.shape[0];
        return rotation.reshape(tokens, Dimension, Dimension).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The inverse frequencies on <paramref name="device"/>, copied there once: a CUDA graph that
    /// computes cos and sin cannot contain a copy from host memory.
    /// </summary>
    private Tensor InverseOn(Device device)
    {
        if (_inverseOnDevice is null || _inverseOnDevice.device_type != device.type || _inverseOnDevice.device_index != device.index)
        {
            _inverseOnDevice?.Dispose();
            _inverseOnDevice = tensor(_inverseFrequencies, device: device).DetachFromDisposeScope();
        }
        return _inverseOnDevice;
    }

    /// <summary>
    /// Rotates <c>x [T, heads, dim]</c> whose pairs (2i, 2i+1) share a frequency by each token's
    /// <see cref="Rotations"/> matrix. The result is in half-split layout (all first members, then all
    /// second members); queries and keys both get it, so their dot products are those of the
    /// interleaved rotation.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor rotations) => bmm(x, rotations);

    public void Dispose()
    {
        _inverseOnDevice?.Dispose();
        _inverseOnDevice = null;
    }
}
