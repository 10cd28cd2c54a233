using DeepSeek.Model.Configuration;
using DeepSeek.Model.Layers;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Modeling;

/// <summary>
/// The packed (varlen) layout FlashAttention reads: cumulative lengths, each sequence's own context
/// slots, the way to and from batch order, and its bottom-right causal rule, which must be exactly the
/// mask the padded SDPA path builds.
/// </summary>
public sealed class VarlenLayoutTests
{
    /// <summary>
    /// Blocks of 4. A chunk of 4 tokens (positions 6–9) after 6 cached ones, over blocks 7, 2, 5; a fresh
    /// prompt of 3 over block 3; a decode row at position 5 over blocks 0, 9.
    /// </summary>
    private static ForwardBatch Mixed(AttentionForm? form = null) => new(
        [11, 12, 13, 14, 21, 22, 23, 31],
        [6, 7, 8, 9, 0, 1, 2, 5],
        [new SequenceSpan(0, 4, [7, 2, 5]), new SequenceSpan(4, 3, [3]), new SequenceSpan(7, 1, [0, 9])],
        BlockSize: 4,
        Attention: form);

    [Fact]
    public void Mixed_batch_packs_each_sequence_with_its_own_context_only()
    {
        var layout = VarlenLayout.Of(Mixed());

        Assert.Equal([0, 4, 7, 8], layout.CumulativeQueries);
        Assert.Equal([0, 10, 13, 19], layout.CumulativeContexts);
        Assert.Equal([4, 3, 1], Enumerable.Range(0, 3).Select(layout.QueryLength));
        Assert.Equal([10, 3, 6], Enumerable.Range(0, 3).Select(layout.ContextLength));
        Assert.Equal(4, layout.MaxQueries);
        Assert.Equal(10, layout.MaxContext);
        Assert.Equal(3, layout.SequenceCount);
        Assert.Equal(
            [28, 29, 30, 31, 8, 9, 10, 11, 20, 21, // the chunk: its 6 cached positions and its own 4
             12, 13, 14,                           // the fresh prompt
             0, 1, 2, 3, 36, 37],                  // the decode row: 5 cached positions and itself
            layout.ContextSlots);
        // The batch lists its sequences in order: packed rows are batch rows.
        Assert.Null(layout.QueryRows);
        Assert.Null(layout.UnpackRows);
    }

    [Fact]
    public void Sequences_listed_out_of_batch_order_are_packed_in_list_order_and_unpacked_back()
    {
        // The first listed sequence holds batch rows 3–4 (positions 2–3), the second rows 0–2 (a fresh prompt).
        var batch = new ForwardBatch([1, 2, 3, 4, 5], [0, 1, 2, 2, 3],
            [new SequenceSpan(3, 2, [1]), new SequenceSpan(0, 3, [0])], BlockSize: 4);
        var layout = VarlenLayout.Of(batch);

        Assert.Equal([0, 2, 5], layout.CumulativeQueries);
        Assert.Equal([0, 4, 7], layout.CumulativeContexts);
        Assert.Equal([4, 5, 6, 7, 0, 1, 2], layout.ContextSlots);
        Assert.Equal([3, 4, 0, 1, 2], layout.QueryRows!);
        Assert.Equal([2, 3, 4, 0, 1], layout.UnpackRows!);
    }

    [Fact]
    public void Bottom_right_causal_rule_is_the_padded_paths_mask_and_its_slots_the_padded_slots()
    {
        // The padded view (absorbed form: mask and slots always built) is the reference the SDPA path attends by.
        var config = DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V2LiteTiny));
        using var rotary = new RotaryEmbedding(config);
        var batch = Mixed(AttentionForm.Absorbed);
        using var padded = AttentionMetadata.Build(batch, config, rotary, ScalarType.Float32, CPU);
        var layout = VarlenLayout.Of(batch);

        var (queries, context) = (padded.MaxQueries, padded.MaxContext);
        using var maskTensor = padded.Masked!.contiguous();
        var masked = maskTensor.data<bool>().ToArray();
        using var slotTensor = padded.ContextSlots!.contiguous();
        var slots = slotTensor.data<long>().ToArray();
        var compared = 0;
        for (var s = 0; s < layout.SequenceCount; s++)
        {
            for (var key = 0; key < layout.ContextLength(s); key++)
            {
                Assert.Equal(slots[(s * context) + key], layout.ContextSlots[layout.CumulativeContexts[s] + key]);
                for (var q = 0; q < layout.QueryLength(s); q++)
                {
                    Assert.True(masked[(((s * queries) + q) * context) + key] != layout.Sees(s, q, key), $"sequence {s}, query {q}, key {key}");
                    compared++;
                }
            }
        }
        Assert.Equal((4 * 10) + (3 * 3) + (1 * 6), compared);
    }

    [Fact]
    public void Only_an_expanded_step_of_a_model_with_a_varlen_kernel_is_packed()
    {
        var config = DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V2LiteTiny));
        using var rotary = new RotaryEmbedding(config);
        VarlenAttentionKernel kernel = (query, _, _, _, _) => query;

        using (var packed = AttentionMetadata.Build(Mixed(AttentionForm.Expanded), config, rotary, ScalarType.Float32, CPU, kernel))
        {
            Assert.NotNull(packed.Varlen);
            Assert.Null(packed.ContextSlots);
            Assert.Null(packed.Masked);
            Assert.False(packed.RowsInBatchOrder);
            Assert.Equal([0, 4, 7, 8], packed.Varlen!.CumulativeQueries.data<int>().ToArray());
            Assert.Equal([0, 10, 13, 19], packed.Varlen.CumulativeContexts.data<int>().ToArray());
            Assert.Equal(19, packed.Varlen.ContextSlots.shape[0]);
        }
        using (var absorbed = AttentionMetadata.Build(Mixed(AttentionForm.Absorbed), config, rotary, ScalarType.Float32, CPU, kernel))
            Assert.Null(absorbed.Varlen);
        using (var withoutKernel = AttentionMetadata.Build(Mixed(AttentionForm.Expanded), config, rotary, ScalarType.Float32, CPU))
            Assert.Null(withoutKernel.Varlen);
    }
}
