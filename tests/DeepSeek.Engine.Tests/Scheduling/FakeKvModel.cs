using DeepSeek.Engine.Execution;
using DeepSeek.Engine.Sampling;
using DeepSeek.Engine.Scheduling;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;

namespace DeepSeek.Engine.Tests.Scheduling;

/// <summary>
/// Stands in for the model runner with a real KV store: every token's (id, position) is written to
/// the slot the block table gives it, and the next token is a hash of the context read back through
/// the block table. A wrong block table, a block freed while in use, or a wrong prefix-cache hit
/// changes the tokens or fails the position check. <see cref="Fault"/> makes chosen steps throw, as a
/// failing device would.
/// </summary>
internal sealed class FakeKvModel(int numBlocks, int blockSize, int vocabularySize, DeepSeekConfig? config = null) : IModelRunner
{
    private const long PositionRange = 1_000_000;
    private readonly long[] _kv = Enumerable.Repeat(-1L, numBlocks * blockSize).ToArray();

    public int Steps { get; private set; }

    public DeepSeekConfig Config => config ?? throw new InvalidOperationException("This fake has no model config.");

    public int NumBlocks => numBlocks;

    /// <summary>Called before each step; an exception it returns is thrown as the step's failure.</summary>
    public Func<SchedulerStep, Exception?>? Fault { get; set; }

    /// <summary>Request ids of every step run (not failed), in order.</summary>
    public List<IReadOnlyList<string>> StepRequests { get; } = [];

    public ModelRunnerOutput Execute(SchedulerStep step)
    {
        if (Fault?.Invoke(step) is { } fault) throw fault;
        Steps++;
        StepRequests.Add(step.Sequences.Select(s => s.Request.Id).ToArray());
        var batch = ForwardBatchLayout.Build(step, blockSize);
        for (var s = 0; s < batch.Sequences.Count; s++)
        {
            var span = batch.Sequences[s];
            for (var t = span.Start; t < span.Start + span.Length; t++)
                _kv[batch.SlotOf(span, batch.Positions[t])] = (batch.TokenIds[t] * PositionRange) + batch.Positions[t];
        }

        var sampled = new Dictionary<string, SampledToken>();
        for (var s = 0; s < batch.Sequences.Count; s++)
        {
            if (!step.Sequences[s].SamplesToken) continue;
            var span = batch.Sequences[s];
            var context = new int[batch.ContextLength(span)];
            for (var p = 0; p < context.Length; p++)
            {
                var slot = batch.SlotOf(span, p);
                var value = _kv[slot];
                if (value < 0 || value % PositionRange != p)
                    throw new InvalidOperationException($"Slot {slot} of {step.Sequences[s].Request.Id} holds {value}, not position {p}.");
                context[p] = (int)(value / PositionRange);
            }
            sampled[step.Sequences[s].Request.Id] = new SampledToken(NextToken(context, vocabularySize), null);
        }
        return new ModelRunnerOutput(sampled, []);
    }

    public float[] Embed(IReadOnlyList<int> tokenIds) => [.. tokenIds.Select(t => (float)t)];

    public void WarmUp(int blockId) { }

    public void Dispose() { }

    /// <summary>The model's rule, from the whole context: what a request must get alone or batched.</summary>
    public static int NextToken(IReadOnlyList<int> context, int vocabularySize)
    {
        ulong hash = 1469598103934665603;
        foreach (var token in context) hash = (hash ^ (ulong)token) * 1099511628211;
        return (int)(hash % (ulong)vocabularySize);
    }
}
