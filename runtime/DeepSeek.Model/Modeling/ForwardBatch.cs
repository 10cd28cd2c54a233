namespace DeepSeek.Model.Modeling;

/// <summary>
/// One model step over a flattened mix of sequences (vLLM's slot-mapping design): plain arrays that
/// the forward turns into tensors. Token <c>t</c> has id <c>TokenIds[t]</c>, position
/// <c>Positions[t]</c>, and its latent is written to cache slot <c>SlotMapping[t]</c>.
/// </summary>
public sealed record ForwardBatch(
    long[] TokenIds,
    long[] Positions,
    long[] SlotMapping,
    IReadOnlyList<SequenceSpan> Sequences,
    LogitsSelection Logits = LogitsSelection.LastTokenOfEachSequence)
{
    public int TokenCount => TokenIds.Length;

    /// <summary>A batch of one sequence whose context lives in slots <c>0..n-1</c> (the simple generator's layout).</summary>
    public static ForwardBatch Contiguous(IReadOnlyList<long> newTokens, int firstPosition, LogitsSelection logits = LogitsSelection.LastTokenOfEachSequence)
    {
        var count = newTokens.Count;
        var positions = Enumerable.Range(firstPosition, count).Select(p => (long)p).ToArray();
        var context = Enumerable.Range(0, firstPosition + count).Select(p => (long)p).ToArray();
        return new ForwardBatch(newTokens.ToArray(), positions, (long[])positions.Clone(), [new SequenceSpan(0, count, context)], logits);
    }

    /// <summary>Checks the batch against the model and cache; the message says which entry is wrong.</summary>
    public void Validate(int vocabSize, long slotCount)
    {
        var count = TokenIds.Length;
        if (count == 0) throw new ArgumentException("A forward batch needs at least one token.");
        if (Positions.Length != count || SlotMapping.Length != count)
            throw new ArgumentException($"TokenIds ({count}), Positions ({Positions.Length}) and SlotMapping ({SlotMapping.Length}) must have one entry per token.");
        for (var t = 0; t < count; t++)
        {
            if (TokenIds[t] < 0 || TokenIds[t] >= vocabSize)
                throw new ArgumentException($"Token id {TokenIds[t]} at batch index {t} is outside the model's vocabulary of {vocabSize}.");
            if (SlotMapping[t] < 0 || SlotMapping[t] >= slotCount)
                throw new ArgumentException($"Slot {SlotMapping[t]} at batch index {t} is outside the KV cache's {slotCount} slots.");
            if (Positions[t] < 0) throw new ArgumentException($"Position {Positions[t]} at batch index {t} is negative.");
        }
        var covered = new bool[count];
        foreach (var span in Sequences)
        {
            if (span.Length <= 0 || span.Start < 0 || span.Start + span.Length > count)
                throw new ArgumentException($"Sequence span [{span.Start}, {span.Start + span.Length}) is not inside the batch of {count} tokens.");
            for (var t = span.Start; t < span.Start + span.Length; t++)
            {
                if (covered[t]) throw new ArgumentException($"Batch index {t} belongs to two sequences.");
                covered[t] = true;
                if (Positions[t] >= span.ContextSlots.Length)
                    throw new ArgumentException($"Position {Positions[t]} at batch index {t} has no context slot (the sequence lists {span.ContextSlots.Length}).");
                if (span.ContextSlots[Positions[t]] != SlotMapping[t])
                    throw new ArgumentException($"Batch index {t} writes slot {SlotMapping[t]} but its sequence's context slot for position {Positions[t]} is {span.ContextSlots[Positions[t]]}.");
            }
            if (span.ContextSlots.Any(slot => slot < 0 || slot >= slotCount))
                throw new ArgumentException($"A context slot of the sequence at batch index {span.Start} is outside the KV cache's {slotCount} slots.");
        }
        var uncovered = Array.IndexOf(covered, false);
        if (uncovered >= 0) throw new ArgumentException($"Batch index {uncovered} belongs to no sequence.");
    }
}
