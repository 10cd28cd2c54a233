namespace DeepSeek.Engine.Scheduling;

/// <summary>
/// A step as flat arrays, the shape the model's <c>ForwardBatch</c> takes: per token its id, position
/// and the KV slot its latent is written to; per sequence its range and context slots.
/// </summary>
public sealed record ForwardBatchArrays(long[] TokenIds, long[] Positions, long[] SlotMapping, IReadOnlyList<SequenceSlice> Sequences)
{
    public int NumTokens => TokenIds.Length;
}
