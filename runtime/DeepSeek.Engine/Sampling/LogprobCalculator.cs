using DeepSeek.Engine.Requests;
using DeepSeek.Model.Modeling;
using static TorchSharp.torch;

namespace DeepSeek.Engine.Sampling;

/// <summary>
/// Log-probabilities from the raw logits rows, before penalties, temperature and filters: vLLM's
/// default (<c>logprobs_mode = raw_logprobs</c>), and what OpenAI's API reports. Computed on the
/// device; only the chosen token's value, its rank and the requested top entries reach the host.
/// </summary>
public static class LogprobCalculator
{
    /// <param name="rawLogits"><c>[rows, vocab]</c> of the rows that asked for log-probabilities.</param>
    /// <param name="chosen"><c>[rows]</c> int64: the sampled tokens of those rows.</param>
    /// <param name="topK">Per row, how many of the most likely tokens to list (0 to 20).</param>
    public static SampledLogprobs[] Compute(Tensor rawLogits, Tensor chosen, IReadOnlyList<int> topK)
    {
        ArgumentNullException.ThrowIfNull(rawLogits);
        ArgumentNullException.ThrowIfNull(chosen);
        ArgumentNullException.ThrowIfNull(topK);
        using var scope = NewDisposeScope();
        var rows = (int)rawLogits.shape[0];
        var logprobs = rawLogits.to(ScalarType.Float64).log_softmax(1);
        var chosenColumn = chosen.unsqueeze(1);
        var chosenLogprob = logprobs.gather(1, chosenColumn);
        var rank = logprobs.gt(chosenLogprob).sum(1).Plus(HeldScalars.One);
        var maxK = topK.Count == 0 ? 0 : topK.Max();
        long[] topIds = [];
        double[] topValues = [];
        if (maxK > 0)
        {
            // Ordered by logit, lower id first among ties: a stable descending sort.
            var (values, ids) = logprobs.sort(dim: 1, descending: true, stable: true);
            topIds = ids.narrow(1, 0, maxK).cpu().contiguous().data<long>().ToArray();
            topValues = values.narrow(1, 0, maxK).cpu().contiguous().data<double>().ToArray();
        }
        var chosenIds = chosen.cpu().data<long>().ToArray();
        var chosenValues = chosenLogprob.squeeze(1).cpu().contiguous().data<double>().ToArray();
        var ranks = rank.cpu().data<long>().ToArray();

        var result = new SampledLogprobs[rows];
        for (var r = 0; r < rows; r++)
        {
            var top = new TokenLogprob[topK[r]];
            for (var i = 0; i < top.Length; i++)
                top[i] = new TokenLogprob((int)topIds[(r * maxK) + i], (float)topValues[(r * maxK) + i]);
            result[r] = new SampledLogprobs(new TokenLogprob((int)chosenIds[r], (float)chosenValues[r]), (int)ranks[r], top);
        }
        return result;
    }
}
