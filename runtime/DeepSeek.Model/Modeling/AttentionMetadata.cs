using DeepSeek.Model.Configuration;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// What every layer's attention needs about a batch, built once per forward: the rotary rotation of
/// each token, where to write its latent, and either a padded <c>[sequences, max queries, max context]</c>
/// view for batched attention (gather indices, causal mask, and the way back to batch order; the
/// context slots and the mask computed on the device from the block tables) or, for an expanded step
/// when the model has a varlen kernel, the sequences packed without padding (<see cref="Varlen"/>).
/// </summary>
public sealed class AttentionMetadata : IDisposable
{
    /// <summary>Each token's rotary rotation (<see cref="Layers.RotaryEmbedding.Positions"/>).</summary>
    public required Layers.RotaryPositions Rotary { get; init; }
    public required Tensor SlotMapping { get; init; }
    /// <summary><c>[S·Qmax]</c>: batch row of each padded query (pads repeat a valid row); null when <see cref="RowsInBatchOrder"/>.</summary>
    public required Tensor? QueryRows { get; init; }
    /// <summary><c>[S·Cmax]</c>: cache slot of each padded context entry; null when <see cref="Varlen"/> packs the contexts instead.</summary>
    public required Tensor? ContextSlots { get; init; }
    /// <summary><c>[S, Qmax, 1, Cmax]</c>: true where a query must not see a context entry.</summary>
    public required Tensor? Masked { get; init; }
    /// <summary><c>[T]</c>: padded row of each batch token; null when <see cref="RowsInBatchOrder"/>.</summary>
    public required Tensor? UnpadRows { get; init; }
    public required int SequenceCount { get; init; }
    public required int MaxQueries { get; init; }
    public required int MaxContext { get; init; }

    /// <summary>
    /// Every sequence is a whole prompt of the same length with nothing cached before it, so the
    /// mask is exactly the causal triangle and no row is padding: attention may use <c>is_causal</c>.
    /// </summary>
    public required bool IsFreshCausal { get; init; }

    /// <summary>
    /// One query per sequence and the sequences in batch order (a decode step): the padded rows are
    /// the batch rows, so there are no <see cref="QueryRows"/> and <see cref="UnpadRows"/> to gather
    /// by, and each sequence's last token is its row.
    /// </summary>
    public required bool RowsInBatchOrder { get; init; }

    /// <summary>
    /// The step's sequences packed without padding, with the kernel that attends over them: set for an
    /// expanded step of a model with a varlen kernel, which then needs none of the padded view
    /// (<see cref="ContextSlots"/>, <see cref="Masked"/>, <see cref="QueryRows"/>, <see cref="UnpadRows"/> are null).
    /// </summary>
    public VarlenAttention? Varlen { get; init; }

    /// <summary>The attention form every layer uses this step.</summary>
    public required AttentionForm Form { get; init; }

    /// <summary>
    /// <c>[T]</c> int64, 1 for a real token and 0 for a padding row of a captured decode step: the
    /// expert counts a forward reports weigh each token's picks by it. Null: every row is real.
    /// </summary>
    public Tensor? CountedRows { get; init; }

    /// <summary>
    /// The metadata of a decode step (one query per sequence) computed on the device from device
    /// tensors alone, so that it can be captured in a CUDA graph and recomputed by every replay:
    /// <paramref name="positions"/>, <paramref name="slotMapping"/> and <paramref name="countedRows"/>
    /// <c>[S]</c>, <paramref name="blockTables"/> <c>[S, contextBucket / blockSize]</c>. Every sequence
    /// attends over <paramref name="contextBucket"/> gathered slots, masked past its own position.
    /// </summary>
    internal static AttentionMetadata ForDecode(Tensor positions, Tensor slotMapping, Tensor blockTables, Tensor countedRows,
        int contextBucket, int blockSize, Layers.RotaryEmbedding rotary, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var s = (int)positions.shape[0];
        var device = positions.device;
        var rotations = rotary.Positions(positions, dtype);
        using var block = blockSize.ToScalar(); // alive until the products have run (HeldScalars says why)
        var contextIndex = HeldScalars.Range(contextBucket, device);
        var contextSlots = blockTables.index_select(1, contextIndex.floor_divide(block)).mul(block).add(contextIndex.remainder(block), HeldScalars.One);
        var masked = contextIndex.view(1, 1, 1, contextBucket).gt(positions.view(s, 1, 1, 1));
        return new AttentionMetadata
        {
            Rotary = rotations.MoveToOuterDisposeScope(),
            SlotMapping = slotMapping.alias().MoveToOuterDisposeScope(),
            QueryRows = null,
            ContextSlots = contextSlots.view(-1).MoveToOuterDisposeScope(),
            Masked = masked.MoveToOuterDisposeScope(),
            UnpadRows = null,
            RowsInBatchOrder = true,
            SequenceCount = s,
            MaxQueries = 1,
            MaxContext = contextBucket,
            IsFreshCausal = false,
            Form = AttentionForm.Absorbed,
            CountedRows = countedRows.alias().MoveToOuterDisposeScope(),
        };
    }

    /// <remarks>
    /// <paramref name="varlen"/>: the model's kernel over packed sequences, if it has one; an expanded
    /// step then gets <see cref="Varlen"/> and no padded view.
    /// </remarks>
    internal static AttentionMetadata Build(ForwardBatch batch, DeepSeekConfig config, Layers.RotaryEmbedding rotary, ScalarType dtype, Device device,
        VarlenAttentionKernel? varlen = null)
    {
        var sequences = batch.Sequences;
        var s = sequences.Count;
        var blockSize = batch.BlockSize;
        var maxQueries = sequences.Max(q => q.Length);
        var maxContext = (int)sequences.Max(batch.ContextLength);
        var maxBlocks = (maxContext + blockSize - 1) / blockSize;
        var rowsInBatchOrder = maxQueries == 1 && Enumerable.Range(0, s).All(i => sequences[i].Start == i);
        var isFreshCausal = sequences.All(q => q.Length == maxQueries && batch.ContextLength(q) == maxQueries);
        var form = batch.Attention ?? AttentionForms.Choose(config, s, maxQueries, maxContext);
        if (varlen is not null && form == AttentionForm.Expanded)
            return Packed(batch, rotary, dtype, device, varlen, rowsInBatchOrder, isFreshCausal);

        // Host arrays grow with the step's new tokens and the block tables, never with the contexts:
        // context slots and the causal mask are derived on the device below.
        var slotMapping = new long[batch.TokenCount];
        var queryRows = new long[s * maxQueries];
        var queryPositions = new long[s * maxQueries];
        var blockStarts = new long[s * maxBlocks];
        var unpad = new long[batch.TokenCount];
        for (var i = 0; i < s; i++)
        {
            var span = sequences[i];
            var blocks = (int)((batch.ContextLength(span) + blockSize - 1) / blockSize);
            // Entries past a sequence's context repeat its first block, so every gathered slot is valid; the mask hides them.
            // Stored as each block's first slot (id × size): one multiplication on the host instead of one more op per step.
            for (var b = 0; b < maxBlocks; b++) blockStarts[(i * maxBlocks) + b] = (long)span.BlockIds[b < blocks ? b : 0] * blockSize;
            for (var q = 0; q < maxQueries; q++)
            {
                var row = (i * maxQueries) + q;
                if (q < span.Length)
                {
                    var t = span.Start + q;
                    queryRows[row] = t;
                    queryPositions[row] = batch.Positions[t];
                    unpad[t] = row;
                    slotMapping[t] = batch.SlotOf(span, batch.Positions[t]);
                }
                else
                {
                    // Padding rows act as position 0: they see one entry, so their softmax stays finite; they are dropped afterwards.
                    queryRows[row] = span.Start;
                }
            }
        }

        using var scope = NewDisposeScope();
        using var positions = tensor(batch.Positions, device: device);
        var rotations = rotary.Positions(positions, dtype);
        // Every operation here runs each step, and on a small model a step is mostly per-operation
        // overhead: tensors are created in their final shape and broadcasting replaces views.
        using var block = blockSize.ToScalar(); // alive until the products have run (HeldScalars says why)
        var contextIndex = HeldScalars.Range(maxContext, device);
        var starts = tensor(blockStarts, [s, maxBlocks], device: device);
        var contextSlots = starts.index_select(1, contextIndex.floor_divide(block)).add_(contextIndex.remainder(block), HeldScalars.One);
        // [s, queries, 1, context] booleans: the one metadata tensor that grows with chunk × context, so
        // it is left out when attention needs no explicit mask (fresh prompts through the causal kernel).
        var masked = isFreshCausal && form == AttentionForm.Expanded
            ? null
            : contextIndex.gt(tensor(queryPositions, [s, maxQueries, 1, 1], device: device));
        return new AttentionMetadata
        {
            Rotary = rotations.MoveToOuterDisposeScope(),
            SlotMapping = tensor(slotMapping, device: device).MoveToOuterDisposeScope(),
            QueryRows = rowsInBatchOrder ? null : tensor(queryRows, device: device).MoveToOuterDisposeScope(),
            ContextSlots = contextSlots.view(-1).MoveToOuterDisposeScope(),
            Masked = masked?.MoveToOuterDisposeScope(),
            UnpadRows = rowsInBatchOrder ? null : tensor(unpad, device: device).MoveToOuterDisposeScope(),
            RowsInBatchOrder = rowsInBatchOrder,
            SequenceCount = s,
            MaxQueries = maxQueries,
            MaxContext = maxContext,
            IsFreshCausal = isFreshCausal,
            Form = form,
        };
    }

    /// <summary>
    /// The metadata of an expanded step through <paramref name="kernel"/>: the rotations and slot mapping
    /// as ever, and the sequences packed by <see cref="VarlenLayout.Of"/> (no mask: the kernel's causal
    /// rule is the mask).
    /// </summary>
    private static AttentionMetadata Packed(ForwardBatch batch, Layers.RotaryEmbedding rotary, ScalarType dtype, Device device,
        VarlenAttentionKernel kernel, bool rowsInBatchOrder, bool isFreshCausal)
    {
        var slotMapping = new long[batch.TokenCount];
        foreach (var span in batch.Sequences)
            for (var t = span.Start; t < span.Start + span.Length; t++) slotMapping[t] = batch.SlotOf(span, batch.Positions[t]);
        var layout = VarlenLayout.Of(batch);
        // Made outside this method's scope, which would free its tensors on return (it moves them out itself).
        var packed = new VarlenAttention(layout, kernel, device);
        using var scope = NewDisposeScope();
        using var positions = tensor(batch.Positions, device: device);
        var rotations = rotary.Positions(positions, dtype);
        return new AttentionMetadata
        {
            Rotary = rotations.MoveToOuterDisposeScope(),
            SlotMapping = tensor(slotMapping, device: device).MoveToOuterDisposeScope(),
            QueryRows = null,
            ContextSlots = null,
            Masked = null,
            UnpadRows = null,
            RowsInBatchOrder = rowsInBatchOrder,
            SequenceCount = layout.SequenceCount,
            MaxQueries = layout.MaxQueries,
            MaxContext = layout.MaxContext,
            IsFreshCausal = isFreshCausal,
            Form = AttentionForm.Expanded,
            Varlen = packed,
        };
    }

    public void Dispose()
    {
        Rotary.Dispose();
        SlotMapping.Dispose();
        QueryRows?.Dispose();
        ContextSlots?.Dispose();
        Varlen?.Dispose();
        Masked?.Dispose();
        UnpadRows?.Dispose();
        CountedRows?.Dispose();
    }
}
