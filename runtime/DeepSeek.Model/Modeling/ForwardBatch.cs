namespace DeepSeek.Model.Modeling;

/// <summary>
/// One model step over a flattened mix of sequences, addressed through paged block tables (vLLM's
/// design): token <c>t</c> has id <c>TokenIds[t]</c> and position <c>Positions[t]</c>; a sequence's
/// context position <c>p</c> lives in cache slot <c>BlockIds[p / BlockSize] · BlockSize + p % BlockSize</c>.
/// The batch carries block ids, not one slot per context token: the slots are computed on the device
/// (<see cref="AttentionMetadata"/>), so the host's work per step grows with the new tokens, not the contexts.
/// <c>Attention</c> forces an attention form (tests of both); null lets <see cref="AttentionForms.Choose"/> pick.
/// </summary>
public sealed record ForwardBatch(
    long[] TokenIds,
    long[] Positions,
    IReadOnlyList<SequenceSpan> Sequences,
    int BlockSize,
    LogitsSelection Logits = LogitsSelection.LastTokenOfEachSequence,
    AttentionForm? Attention = null)
{
    public int TokenCount => TokenIds.Length;

    /// <summary>The cache slot of context position <paramref name="position"/> of <paramref name="span"/>.</summary>
    public long SlotOf(SequenceSpan span, long position)
    {
        ArgumentNullException.ThrowIfNull(span);
        return ((long)span.BlockIds[(int)(position / BlockSize)] * BlockSize) + (position % BlockSize);
    }

    /// <summary>
    /// A batch of one sequence whose context lives in slots <c>0..n-1</c> (the simple generator's
    /// layout): one block as long as the context.
    /// </summary>
    public static ForwardBatch Contiguous(IReadOnlyList<long> newTokens, int firstPosition, LogitsSelection logits = LogitsSelection.LastTokenOfEachSequence)
    {
        ArgumentNullException.ThrowIfNull(newTokens);
        var count = newTokens.Count;
        var positions = Enumerable.Range(firstPosition, count).Select(p => (long)p).ToArray();
        return new ForwardBatch(newTokens.ToArray(), positions, [new SequenceSpan(0, count, [0])], Math.Max(1, firstPosition + count), logits);
    }

    /// <summary>Checks the batch against the model and cache; the message says which entry is wrong.</summary>
    public void Validate(int vocabSize, long slotCount)
    {
        var count = TokenIds.Length;
        if (count == 0) throw new ArgumentException("A forward batch needs at least one token.");
        if (BlockSize < 1) throw new ArgumentException($"The block size must be at least 1, got {BlockSize}.");
        if (Positions.Length != count)
            throw new ArgumentException($"TokenIds ({count}) and Positions ({Positions.Length}) must have one entry per token.");
        for (var t = 0; t < count; t++)
        {
            if (TokenIds[t] < 0 || TokenIds[t] >= vocabSize)
                throw new ArgumentException($"Token id {TokenIds[t]} at batch index {t} is outside the model's vocabulary of {vocabSize}.");
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
                if (t > span.Start && Positions[t] != Positions[t - 1] + 1)
                    throw new ArgumentException($"Positions of a sequence must be consecutive; batch index {t} has {Positions[t]} after {Positions[t - 1]}.");
            }
            var context = ContextLength(span);
            var blocks = (context + BlockSize - 1) / BlockSize;
            if (blocks > span.BlockIds.Count)
                throw new ArgumentException($"The sequence at batch index {span.Start} has {context} context tokens but {span.BlockIds.Count} blocks of {BlockSize}.");
            for (var b = 0; b < blocks; b++)
            {
                var lastUsed = SlotOf(span, Math.Min(context, (long)(b + 1) * BlockSize) - 1);
                if (span.BlockIds[b] < 0 || lastUsed >= slotCount)
                    throw new ArgumentException($"Block {span.BlockIds[b]} of the sequence at batch index {span.Start} is outside the KV cache's {slotCount} slots.");
            }
        }
        var uncovered = Array.IndexOf(covered, false);
        if (uncovered >= 0) throw new ArgumentException($"Batch index {uncovered} belongs to no sequence.");
    }

    /// <summary>Context tokens a sequence attends over: every position up to its last new token.</summary>
    public long ContextLength(SequenceSpan span)
    {
        ArgumentNullException.ThrowIfNull(span);
        return Positions[span.Start + span.Length - 1] + 1;
    }
}

/// <summary>
/// One sequence's share of a <see cref="ForwardBatch"/>: tokens <c>[Start, Start + Length)</c> of the
/// batch (consecutive positions, its newest tokens) and its block table, which holds at least the
/// blocks of every context position up to the last of them. <c>Adapter</c>: the
/// <see cref="DeepSeek.Model.Lora.LoraSlots"/> slot whose adapter its tokens get, −1 for none.
/// </summary>
public sealed record SequenceSpan(int Start, int Length, IReadOnlyList<int> BlockIds, int Adapter = -1);
