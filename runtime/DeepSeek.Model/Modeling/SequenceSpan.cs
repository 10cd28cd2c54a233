namespace DeepSeek.Model.Modeling;

/// <summary>
/// One sequence's share of a <see cref="ForwardBatch"/>: tokens <c>[Start, Start + Length)</c> of the
/// batch, and the cache slots of all its context tokens in position order (this step's included),
/// so context token <c>j</c> is at position <c>j</c> and lives in slot <c>ContextSlots[j]</c>.
/// </summary>
public sealed record SequenceSpan(int Start, int Length, long[] ContextSlots);
