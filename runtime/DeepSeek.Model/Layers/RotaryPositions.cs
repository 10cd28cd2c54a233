using DeepSeek.Model.Modeling;
using static TorchSharp.torch;

namespace DeepSeek.Model.Layers;

/// <summary>
/// The rotary rotation of each token of one forward (<see cref="RotaryEmbedding.Positions"/>), which
/// every layer applies to its queries and its roped key part. Pair (2i, 2i+1) of a vector is turned
/// by the token's angle i and written to positions i and dim/2 + i: the half-split layout, which
/// queries and keys both get, so their dot products are those of the interleaved rotation.
/// <para>
/// Two representations of the same rotation. On CUDA, one <c>[dim, dim]</c> matrix per token: a use is
/// one batched product instead of seven elementwise launches, which a launch-bound decode step feels,
/// and each output is two products summed in the product's accumulator and rounded once. On the CPU,
/// cos and sin <c>[T, 1, dim/2]</c>: a CPU computes seven vector operations faster than thousands of
/// tiny matrix products (the tiny model's prefill of 1,024 tokens got slower with the matrices).
/// </para>
/// </summary>
public sealed class RotaryPositions : IDisposable
{
    private Tensor? _rotations;
    private Tensor? _cos;
    private Tensor? _sin;

    internal RotaryPositions(Tensor? rotations, Tensor? cos, Tensor? sin)
    {
        if ((rotations is null) == (cos is null || sin is null))
            throw new ArgumentException("Give the rotation matrices or cos and sin, not both.");
        (_rotations, _cos, _sin) = (rotations, cos, sin);
    }

    public bool IsMatrices => _rotations is not null;

    /// <summary>Rotates <c>x [T, heads, dim]</c>.</summary>
    public Tensor Apply(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (_rotations is not null) return bmm(x, _rotations);
        using var scope = NewDisposeScope();
        var shape = x.shape;
        var pairs = x.view(shape[0], shape[1], shape[2] / 2, 2);
        var first = pairs.select(-1, 0);
        var second = pairs.select(-1, 1);
        return cat([first * _cos! - second * _sin!, (second * _cos!).Plus(first * _sin!)], -1).MoveToOuterDisposeScope();
    }

    /// <summary>Moves the tensors to the dispose scope outside the current one, as <c>Tensor.MoveToOuterDisposeScope</c> does.</summary>
    public RotaryPositions MoveToOuterDisposeScope()
    {
        _rotations?.MoveToOuterDisposeScope();
        _cos?.MoveToOuterDisposeScope();
        _sin?.MoveToOuterDisposeScope();
        return this;
    }

    public void Dispose()
    {
        _rotations?.Dispose();
        _cos?.Dispose();
        _sin?.Dispose();
        (_rotations, _cos, _sin) = (null, null, null);
    }
}
