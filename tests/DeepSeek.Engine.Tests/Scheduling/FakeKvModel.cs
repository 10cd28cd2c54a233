using DeepSeek.Engine.Scheduling;

namespace DeepSeek.Engine.Tests.Scheduling;

/// <summary>
/// Stands in for the model with a real KV store: every token's (id, position) is written to its slot,
/// and the next token is a hash of the context read back from the slots. A wrong slot mapping, a block
/// freed while in use, or a wrong prefix-cache hit changes the tokens or fails the position check.
/// </summary>
internal sealed class FakeKvModel(int numSlots, int vocabularySize)
{
    private const long PositionRange = 1_000_000;
    private readonly long[] _kv = Enumerable.Repeat(-1L, numSlots).ToArray();

    public int Steps { get; private set; }

    /// <summary>One token per sequence, aligned with the batch's sequences (-1 where it samples nothing).</summary>
    public int[] Forward(ForwardBatchArrays batch)
    {
        Steps++;
        for (var t = 0; t < batch.NumTokens; t++)
            _kv[batch.SlotMapping[t]] = (batch.TokenIds[t] * PositionRange) + batch.Positions[t];

        var sampled = new int[batch.Sequences.Count];
        for (var s = 0; s < batch.Sequences.Count; s++)
        {
            var seq = batch.Sequences[s];
            var context = new int[seq.ContextSlots.Length];
            for (var p = 0; p < context.Length; p++)
            {
                var value = _kv[seq.ContextSlots[p]];
                if (value < 0 || value % PositionRange != p)
                    throw new InvalidOperationException($"Slot {seq.ContextSlots[p]} of {seq.RequestId} holds {value}, not position {p}.");
                context[p] = (int)(value / PositionRange);
            }
            sampled[s] = seq.SamplesToken ? NextToken(context, vocabularySize) : -1;
        }
        return sampled;
    }

    /// <summary>The model's rule, from the whole context: what a request must get alone or batched.</summary>
    public static int NextToken(IReadOnlyList<int> context, int vocabularySize)
    {
        ulong hash = 1469598103934665603;
        foreach (var token in context) hash = (hash ^ (ulong)token) * 1099511628211;
        return (int)(hash % (ulong)vocabularySize);
    }
}
