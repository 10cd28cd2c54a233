using TorchSharp;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// Scalars that outlive the LibTorch call they are passed to. TorchSharp hands LibTorch a
/// <see cref="Scalar"/>'s native handle and keeps no reference to the managed object during the call,
/// so a temporary from an implicit conversion (<c>x.pow(2)</c>, <c>x * 0.5</c>,
/// <c>masked_fill(m, -inf)</c>) can be finalized, and its native value freed, while LibTorch still
/// reads it. Under allocation pressure from other threads that failed a model step with "INTERNAL
/// ASSERT FAILED at c10/core/Scalar.h" (a flood of requests on a busy machine found it). So the
/// per-step code passes no temporary Scalar: constants are held here for the life of the process,
/// a module holds the ones made from its configuration, and a value that varies per call is made
/// with <c>using var</c>, which keeps it alive until the call has returned.
/// </summary>
public static class HeldScalars
{
    public static readonly Scalar Zero = 0.ToScalar();
    public static readonly Scalar One = 1.ToScalar();
    public static readonly Scalar Two = 2.ToScalar();
    public static readonly Scalar MinusOne = (-1).ToScalar();
    public static readonly Scalar ZeroReal = 0.0.ToScalar();
    public static readonly Scalar OneReal = 1.0.ToScalar();
    public static readonly Scalar NegativeInfinity = double.NegativeInfinity.ToScalar();

    /// <summary>
    /// <c>a + b</c>. TorchSharp's <c>+</c> and one-argument <c>add</c> pass LibTorch a temporary alpha
    /// Scalar of 1 of their own making, with the same race; this passes a held one.
    /// </summary>
    public static torch.Tensor Plus(this torch.Tensor a, torch.Tensor b) => a.add(b, One);

    /// <inheritdoc cref="Plus(torch.Tensor, torch.Tensor)"/>
    public static torch.Tensor Plus(this torch.Tensor a, Scalar b) => a.add(b, One);

    /// <summary><c>0, 1, …, <paramref name="count"/> − 1</c> as int64 on <paramref name="device"/>, with no temporary Scalar.</summary>
    public static torch.Tensor Range(long count, torch.Device device)
    {
        using var stop = count.ToScalar();
        return torch.arange(Zero, stop, One, torch.ScalarType.Int64, device);
    }
}
