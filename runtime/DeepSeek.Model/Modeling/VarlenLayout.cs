namespace DeepSeek.Model.Modeling;

/// <summary>
/// A step's sequences packed one after another without padding, the layout of FlashAttention's
/// variable-length form: sequence <c>i</c>'s queries are packed rows
/// <c>[CumulativeQueries[i], CumulativeQueries[i+1])</c> and its context (every position up to its last
/// new token, gathered from the latent cache) packed entries <c>[CumulativeContexts[i], CumulativeContexts[i+1])</c>.
/// Computed on the host from the batch alone (a pure function), once per step. Unlike the padded layout
/// of <see cref="AttentionMetadata"/>, nothing here grows with sequences × the longest context: a chunk
/// after 120K cached tokens next to a few decode rows costs each row its own context only.
/// </summary>
public sealed class VarlenLayout
{
    private VarlenLayout(int[] cumulativeQueries, int[] cumulativeContexts, long[] contextSlots, long[]? queryRows, long[]? unpackRows)
    {
        CumulativeQueries = cumulativeQueries;
        CumulativeContexts = cumulativeContexts;
        ContextSlots = contextSlots;
        QueryRows = queryRows;
        UnpackRows = unpackRows;
        for (var i = 0; i + 1 < cumulativeQueries.Length; i++)
        {
            MaxQueries = Math.Max(MaxQueries, cumulativeQueries[i + 1] - cumulativeQueries[i]);
            MaxContext = Math.Max(MaxContext, cumulativeContexts[i + 1] - cumulativeContexts[i]);
        }
    }

    /// <summary><c>[S+1]</c>: the first packed query row of each sequence, then the step's token count.</summary>
    public int[] CumulativeQueries { get; }

    /// <summary><c>[S+1]</c>: the first packed context entry of each sequence, then the sum of the contexts.</summary>
    public int[] CumulativeContexts { get; }

    /// <summary><c>[Σ contexts]</c>: the cache slot of each packed context entry, sequence by sequence, position by position.</summary>
    public long[] ContextSlots { get; }

    /// <summary><c>[T]</c>: the batch row of each packed query row; null when the batch already lists its sequences in order.</summary>
    public long[]? QueryRows { get; }

    /// <summary><c>[T]</c>: the packed row of each batch row (the inverse of <see cref="QueryRows"/>); null with it.</summary>
    public long[]? UnpackRows { get; }

    /// <summary>The most queries of one sequence (FlashAttention's <c>max_seqlen_q</c>).</summary>
    public int MaxQueries { get; }

    /// <summary>The longest context of one sequence (FlashAttention's <c>max_seqlen_k</c>).</summary>
    public int MaxContext { get; }

    public int SequenceCount => CumulativeQueries.Length - 1;

    public int QueryLength(int sequence) => CumulativeQueries[sequence + 1] - CumulativeQueries[sequence];

    public int ContextLength(int sequence) => CumulativeContexts[sequence + 1] - CumulativeContexts[sequence];

    /// <summary>
    /// The causal rule the kernel is asked for, aligned bottom-right: query <paramref name="query"/> (0-based
    /// within its sequence) of <paramref name="sequence"/> sees context entry <paramref name="key"/> up to
    /// its own position. A sequence's queries are its newest tokens, so query <c>i</c> of <c>n</c> over a
    /// context of <c>c</c> sits at position <c>c − n + i</c>: a whole fresh prompt gets the plain triangle,
    /// a chunk after cached tokens sees all of them, a decode row sees its whole context.
    /// </summary>
    public bool Sees(int sequence, int query, int key) => key <= query + ContextLength(sequence) - QueryLength(sequence);

    /// <summary>The packed layout of <paramref name="batch"/>'s sequences, in the order the batch lists them.</summary>
    public static VarlenLayout Of(ForwardBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var sequences = batch.Sequences;
        var s = sequences.Count;
        var cumulativeQueries = new int[s + 1];
        var cumulativeContexts = new int[s + 1];
        var inBatchOrder = true;
        for (var i = 0; i < s; i++)
        {
            inBatchOrder &= sequences[i].Start == cumulativeQueries[i];
            cumulativeQueries[i + 1] = cumulativeQueries[i] + sequences[i].Length;
            // int32: the kernel's type; a step's contexts are bounded by the cache's slots.
            cumulativeContexts[i + 1] = checked(cumulativeContexts[i] + (int)batch.ContextLength(sequences[i]));
        }

        var slots = new long[cumulativeContexts[s]];
        for (var i = 0; i < s; i++)
        {
            var span = sequences[i];
            var first = cumulativeContexts[i];
            var length = cumulativeContexts[i + 1] - first;
            for (var p = 0; p < length; p++) slots[first + p] = batch.SlotOf(span, p);
        }

        if (inBatchOrder) return new VarlenLayout(cumulativeQueries, cumulativeContexts, slots, null, null);
        var queryRows = new long[batch.TokenCount];
        var unpackRows = new long[batch.TokenCount];
        for (var i = 0; i < s; i++)
        {
            var span = sequences[i];
            for (var q = 0; q < span.Length; q++)
            {
                var packed = cumulativeQueries[i] + q;
                queryRows[packed] = span.Start + q;
                unpackRows[span.Start + q] = packed;
            }
        }
        return new VarlenLayout(cumulativeQueries, cumulativeContexts, slots, queryRows, unpackRows);
    }
}
