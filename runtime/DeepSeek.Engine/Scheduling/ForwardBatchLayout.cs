using DeepSeek.Model.Modeling;

namespace DeepSeek.Engine.Scheduling;

/// <summary>
/// Turns a scheduled step into the model's <see cref="ForwardBatch"/>: per new token its id and
/// position, per sequence its block table (the request's own list, not a copy per context token).
/// Pure: same step, same batch.
/// </summary>
public static class ForwardBatchLayout
{
    /// <remarks><c>adapterSlots</c>: each sequence's LoRA slot (−1: none); null: no sequence has an adapter.</remarks>
    public static ForwardBatch Build(SchedulerStep step, int blockSize, IReadOnlyList<int>? adapterSlots = null)
    {
        ArgumentNullException.ThrowIfNull(step);
        var total = step.TotalTokens;
        var tokenIds = new long[total];
        var positions = new long[total];
        var sequences = new SequenceSpan[step.Sequences.Count];
        var t = 0;
        for (var s = 0; s < step.Sequences.Count; s++)
        {
            var seq = step.Sequences[s];
            var request = seq.Request;
            var start = t;
            for (var p = seq.StartPosition; p < seq.StartPosition + seq.NumTokens; p++, t++)
            {
                tokenIds[t] = request.TokenAt(p);
                positions[t] = p;
            }
            sequences[s] = new SequenceSpan(start, seq.NumTokens, request.BlockTable.BlockIds, adapterSlots?[s] ?? -1);
        }
        return new ForwardBatch(tokenIds, positions, sequences, blockSize);
    }
}
