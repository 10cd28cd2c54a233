using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using TorchSharp;
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

    // Held: the per-step products take no temporary Scalar (Modeling.HeldScalars says why).
    private readonly Scalar _attentionFactor;

    public int Dimension { get; }

    public RotaryEmbedding(DeepSeekConfig config)
    {
        Dimension = config.QkRopeHeadDim;
        (_inverseFrequencies, AttentionFactor) = Frequencies(config.Rope, Dimension, config.MaxPositionEmbeddings);
        _attentionFactor = AttentionFactor.ToScalar();
    }

    public IReadOnlyList<float> InverseFrequencies => _inverseFrequencies;

    internal static (float[] InverseFrequencies, double AttentionFactor) Frequencies(RopeScaling rope, int dim, int maxPositions)
    {
        using var scope = NewDisposeScope();
        // Every Scalar held until its call returns (HeldScalars says why; a busy machine's model load failed here).
        using var dimScalar = dim.ToScalar();
        using var one = 1.0f.ToScalar();
        // base^(2i/dim) in float32 exactly as transformers computes it.
        var exponents = arange(HeldScalars.Zero, dimScalar, HeldScalars.Two, ScalarType.Int64).to(ScalarType.Float32).div(dimScalar);
        var positionFrequencies = pow(tensor((float)rope.Theta), exponents);
        var extrapolation = one / positionFrequencies;
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

        using var factorScalar = ((float)factor).ToScalar();
        using var halfDim = (dim / 2).ToScalar();
        using var lowScalar = ((float)low).ToScalar();
        using var span = ((float)(high - low)).ToScalar();
        var interpolation = one / positionFrequencies.mul(factorScalar);
        var ramp = arange(HeldScalars.Zero, halfDim, HeldScalars.One, ScalarType.Float32).sub(lowScalar).div(span).clamp(HeldScalars.Zero, HeldScalars.One);
        var extrapolationWeight = ones_like(ramp).sub(ramp);
        var inverse = interpolation.mul(ones_like(extrapolationWeight).sub(extrapolationWeight)).Plus(extrapolation.mul(extrapolationWeight));
        return (inverse.data<float>().ToArray(), attentionFactor);
    }

    /// <summary>
    /// The rotary rotation of every token at <paramref name="positions"/>, built once per forward for
    /// every layer: as <c>[dim, dim]</c> matrices on CUDA, as cos and sin elsewhere
    /// (<see cref="RotaryPositions"/> says why); <paramref name="asMatrices"/> forces one (tests).
    /// </summary>
    public RotaryPositions Positions(Tensor positions, ScalarType dtype, bool? asMatrices = null)
    {
        ArgumentNullException.ThrowIfNull(positions);
        using var scope = NewDisposeScope();
        var angles = positions.to(ScalarType.Float32).unsqueeze(1) * InverseOn(positions.device).unsqueeze(0);
        var cos = (angles.cos() * _attentionFactor).to(dtype);                      // [T, dim/2]
        var sin = (angles.sin() * _attentionFactor).to(dtype);
        if (!(asMatrices ?? positions.device_type == DeviceType.CUDA))
            return new RotaryPositions(null, cos.unsqueeze(1).MoveToOuterDisposeScope(), sin.unsqueeze(1).MoveToOuterDisposeScope());
        // [T, i, r, c, j]: row 2i + r, column c · dim/2 + j, non-zero where j = i.
        var (cosDiagonal, sinDiagonal) = (diag_embed(cos), diag_embed(sin));
        var rotation = stack([stack([cosDiagonal, sinDiagonal], 2), stack([sinDiagonal.neg(), cosDiagonal], 2)], 2);
        return new RotaryPositions(rotation.reshape(positions.shape[0], Dimension, Dimension).MoveToOuterDisposeScope(), null, null);
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

    public void Dispose()
    {
        _inverseOnDevice?.Dispose();
        _inverseOnDevice = null;
    }
}
