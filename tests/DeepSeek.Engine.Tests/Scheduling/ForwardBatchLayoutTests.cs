using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Scheduling;

namespace DeepSeek.Engine.Tests.Scheduling;

public sealed class ForwardBatchLayoutTests
{
    [Fact]
    public void Lays_out_tokens_and_positions_with_each_sequence_s_block_table()
    {
        // Block size 4. A has blocks [5, 2], 2 tokens computed, 3 new; B decodes its 6th token in blocks [7, 0].
        var a = new EngineRequest("a", [10, 11, 12, 13, 14], SamplingParameters.Greedy);
        var b = new EngineRequest("b", [20, 21, 22, 23, 24, 25], SamplingParameters.Greedy);
        SetBlocks(a, 5, 2);
        SetBlocks(b, 7, 0);
        var step = new SchedulerStep(
            [new ScheduledSequence(a, 2, 3, SamplesToken: true), new ScheduledSequence(b, 5, 1, SamplesToken: true)], [], [], []);

        var batch = ForwardBatchLayout.Build(step, blockSize: 4);

        Assert.Equal([12L, 13, 14, 25], batch.TokenIds);
        Assert.Equal([2L, 3, 4, 5], batch.Positions);
        Assert.Equal(4, batch.BlockSize);
        Assert.Equal(2, batch.Sequences.Count);
        Assert.Equal((0, 3), (batch.Sequences[0].Start, batch.Sequences[0].Length));
        Assert.Equal([5, 2], batch.Sequences[0].BlockIds);
        Assert.Equal((3, 1), (batch.Sequences[1].Start, batch.Sequences[1].Length));
        Assert.Equal([7, 0], batch.Sequences[1].BlockIds);

        // The slots the model derives: where the new tokens go, and each sequence's whole context.
        Assert.Equal([22L, 23, 8], Enumerable.Range(2, 3).Select(p => batch.SlotOf(batch.Sequences[0], p)));
        Assert.Equal(5, batch.ContextLength(batch.Sequences[0]));
        Assert.Equal([28L, 29, 30, 31, 0, 1], Enumerable.Range(0, 6).Select(p => batch.SlotOf(batch.Sequences[1], p)));
        batch.Validate(vocabSize: 50, slotCount: 32);
    }

    private static void SetBlocks(EngineRequest request, params int[] blocks)
    {
        foreach (var block in blocks) request.BlockTable.Add(block);
    }
}
