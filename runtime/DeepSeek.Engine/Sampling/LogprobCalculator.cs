using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.Sampling;

/// <summary>
/// Log-probabilities from the raw logits row, before penalties, temperature and filters: vLLM's
/// default (<c>logprobs_mode = raw_logprobs</c>), and what OpenAI's API reports.
/// </summary>
public static class LogprobCalculator
{
    public static SampledLogprobs Compute(ReadOnlySpan<float> rawLogits, int chosenTokenId, int topK)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(topK);
        var logZ = LogitsProcessing.LogSumExp(rawLogits);
        var chosenLogit = rawLogits[chosenTokenId];
        var rank = 1;
        foreach (var value in rawLogits)
            if (value > chosenLogit) rank++;

        var heap = new PriorityQueue<int, (float Logit, int NegId)>(topK + 1);
        if (topK > 0)
        {
            for (var i = 0; i < rawLogits.Length; i++)
            {
                // Ordered by logit, then lower id first among ties: the heap's minimum is the one to drop.
                heap.Enqueue(i, (rawLogits[i], -i));
                if (heap.Count > topK) heap.Dequeue();
            }
        }
        var top = new TokenLogprob[heap.Count];
        for (var i = top.Length - 1; i >= 0; i--)
        {
            var id = heap.Dequeue();
            top[i] = new TokenLogprob(id, (float)(rawLogits[id] - logZ));
        }
        return new SampledLogprobs(new TokenLogprob(chosenTokenId, (float)(chosenLogit - logZ)), rank, top);
    }
}
