using DeepSeek.Engine.Structured;

namespace DeepSeek.Runtime.Bench;

/// <summary>
/// A benchmark batch with constrained decoding in it: <see cref="Share"/> of each batch's requests
/// (rounded up, so a batch of one is constrained) decode under <see cref="Constraint"/>, the rest
/// without, in the same steps.
/// </summary>
public sealed record StructuredLoad(OutputConstraint Constraint, double Share, string SchemaName)
{
    public int ConstrainedOf(int batch) => (int)Math.Min(batch, Math.Ceiling(batch * Share));
}
