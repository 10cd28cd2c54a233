namespace DeepSeek.Engine.Scheduling;

/// <summary>Turns a scheduled step into the flat arrays the model reads. Pure: same step, same arrays.</summary>
public static class ForwardBatchLayout
{
    public static ForwardBatchArrays Build(SchedulerStep step, int blockSize)
    {
        ArgumentNullException.ThrowIfNull(step);
        var total = step.TotalTokens;
        var tokenIds = new long[total];
        var positions = new long[total];
        var slots = new long[total];
        var sequences = new SequenceSlice[step.Sequences.Count];
        var t = 0;
        for (var s = 0; s < step.Sequences.Count; s++)
        {
            var seq = step.Sequences[s];
            var request = seq.Request;
            var table = request.BlockTable;
            var start = t;
            for (var p = seq.StartPosition; p < seq.StartPosition + seq.NumTokens; p++, t++)
            {
                tokenIds[t] = request.TokenAt(p);
                positions[t] = p;
                slots[t] = table.SlotOf(p, blockSize);
            }
            var contextLength = seq.StartPosition + seq.NumTokens;
            var context = new long[contextLength];
            for (var p = 0; p < contextLength; p++) context[p] = table.SlotOf(p, blockSize);
            sequences[s] = new SequenceSlice(request.Id, start, seq.NumTokens, context, seq.SamplesToken);
        }
        return new ForwardBatchArrays(tokenIds, positions, slots, sequences);
    }
}
