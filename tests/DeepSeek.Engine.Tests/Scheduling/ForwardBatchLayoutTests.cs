using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Scheduling;

namespace DeepSeek.Engine.Tests.Scheduling;

public sealed class ForwardBatchLayoutTests
{
    [Fact]
    public void Lays_out_tokens_positions_slots_and_context_per_sequence()
    {
        // Block size 4. A has blocks [5, 2], 2 tokens computed, 3 new; B decodes its 6th token in blocks [7, 0].
        var a = new EngineRequest("a", [10, 11, 12, 13, 14], SamplingParameters.Greedy);
        var b = new EngineRequest("b", [20, 21, 22, 23, 24, 25], SamplingParameters.Greedy);
        SetBlocks(a, 5, 2);
        SetBlocks(b, 7, 0);
        var step = new SchedulerStep(
            [new ScheduledSequence(a, 2, 3, SamplesToken: true), new ScheduledSequence(b, 5, 1, SamplesToken: true)], [], []);

        var batch = ForwardBatchLayout.Build(step, blockSize: 4);

        Assert.Equal([12L, 13, 14, 25], batch.TokenIds);
        Assert.Equal([2L, 3, 4, 5], batch.Positions);
        Assert.Equal([22L, 23, 8, 1], batch.SlotMapping);
        Assert.Equal(2, batch.Sequences.Count);
        Assert.Equal(("a", 0, 3), (batch.Sequences[0].RequestId, batch.Sequences[0].TokenStart, batch.Sequences[0].TokenCount));
        Assert.Equal([20L, 21, 22, 23, 8], batch.Sequences[0].ContextSlots);
        Assert.Equal(("b", 3, 1), (batch.Sequences[1].RequestId, batch.Sequences[1].TokenStart, batch.Sequences[1].TokenCount));
        Assert.Equal([28L, 29, 30, 31, 0, 1], batch.Sequences[1].ContextSlots);
    }

    private static void SetBlocks(EngineRequest request, params int[] blocks)
    {
        foreach (var block in blocks) request.BlockTable.Add(block);
    }
}
