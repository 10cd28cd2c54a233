using DeepSeek.Model.Experts;

namespace DeepSeek.Engine.Execution;

/// <summary>
/// What one model step hands back to the engine, on the host: the last-token logits of every
/// sampling sequence as one flat <c>[rows, vocab]</c> array (one device→host copy per step), and
/// the routed token counts of every MoE layer.
/// </summary>
public sealed class StepLogits(float[] logits, int vocabSize, int[] rowOfSequence, IReadOnlyList<ExpertLoad> expertLoads)
{
    public int VocabSize { get; } = vocabSize;

    public IReadOnlyList<ExpertLoad> ExpertLoads { get; } = expertLoads;

    /// <summary>The logits row of sequence <paramref name="sequenceIndex"/> of the step (it must sample a token).</summary>
    public ReadOnlySpan<float> Row(int sequenceIndex)
    {
        var row = rowOfSequence[sequenceIndex];
        if (row < 0) throw new InvalidOperationException($"Sequence {sequenceIndex} of the step samples no token, so it has no logits row.");
        return logits.AsSpan(row * VocabSize, VocabSize);
    }
}
