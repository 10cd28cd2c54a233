namespace DeepSeek.Engine.Scheduling;

/// <summary>
/// One sequence of a <see cref="ForwardBatchArrays"/>: its tokens are
/// [<see cref="TokenStart"/>, <see cref="TokenStart"/> + <see cref="TokenCount"/>) of the flat arrays;
/// <see cref="ContextSlots"/> are the KV slots of all its context tokens in order, this step's included.
/// </summary>
public sealed record SequenceSlice(string RequestId, int TokenStart, int TokenCount, long[] ContextSlots, bool SamplesToken);
