namespace DeepSeek.Engine.Sampling;

/// <summary>
/// The steps between a logits row and a sampled token, each on a row in place. Masked tokens become
/// negative infinity. Order in <see cref="RequestSampler"/>: penalties, min_tokens mask, temperature,
/// top-k, top-p (vLLM's order).
/// </summary>
public static class LogitsProcessing
{
    /// <summary>Hugging Face's repetition penalty: for each distinct seen token, a positive logit is divided by the penalty, a negative one multiplied.</summary>
    public static void ApplyRepetitionPenalty(Span<float> logits, IReadOnlySet<int> seenTokenIds, float penalty)
    {
        ArgumentNullException.ThrowIfNull(seenTokenIds);
        if (penalty == 1f) return;
        foreach (var id in seenTokenIds)
        {
            if ((uint)id >= (uint)logits.Length) continue;
            logits[id] = logits[id] < 0 ? logits[id] * penalty : logits[id] / penalty;
        }
    }

    /// <summary>OpenAI's penalties over generated tokens: logit −= count × frequency + (count &gt; 0) × presence.</summary>
    public static void ApplyPresenceFrequencyPenalties(Span<float> logits, IReadOnlyDictionary<int, int> outputTokenCounts, float presence, float frequency)
    {
        ArgumentNullException.ThrowIfNull(outputTokenCounts);
        if (presence == 0f && frequency == 0f) return;
        foreach (var (id, count) in outputTokenCounts)
        {
            if ((uint)id >= (uint)logits.Length || count <= 0) continue;
            logits[id] -= (count * frequency) + presence;
        }
    }

    public static void MaskTokens(Span<float> logits, IEnumerable<int> tokenIds)
    {
        ArgumentNullException.ThrowIfNull(tokenIds);
        foreach (var id in tokenIds)
            if ((uint)id < (uint)logits.Length) logits[id] = float.NegativeInfinity;
    }

    public static void ApplyTemperature(Span<float> logits, float temperature)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(temperature);
        if (temperature == 1f) return;
        var inverse = 1f / temperature;
        for (var i = 0; i < logits.Length; i++) logits[i] *= inverse;
    }

    /// <summary>Keeps the <paramref name="k"/> largest logits and any tied with the k-th (as vLLM); 0 or k ≥ vocabulary keeps all.</summary>
    public static void ApplyTopK(Span<float> logits, int k)
    {
        if (k <= 0 || k >= logits.Length) return;
        // A min-heap of the k largest values: O(V log k) instead of a full sort of the vocabulary.
        var heap = new PriorityQueue<float, float>(k);
        foreach (var value in logits)
        {
            if (heap.Count < k) heap.Enqueue(value, value);
            else if (value > heap.Peek()) heap.EnqueueDequeue(value, value);
        }
        var kth = heap.Peek();
        for (var i = 0; i < logits.Length; i++)
            if (logits[i] < kth) logits[i] = float.NegativeInfinity;
    }

    /// <summary>
    /// Nucleus filter: in order of decreasing probability (ties by token id), a token is kept while the
    /// probability of the tokens before it is below <paramref name="p"/>; the most likely token is always kept.
    /// </summary>
    public static void ApplyTopP(Span<float> logits, float p)
    {
        if (p >= 1f) return;
        var max = Max(logits);
        if (float.IsNegativeInfinity(max)) return;
        double total = 0;
        foreach (var value in logits) total += Math.Exp(value - max);

        // Only tokens above a probability threshold can be in the nucleus once their mass reaches p;
        // sorting those few instead of the whole vocabulary gives the same set.
        var threshold = 1e-4;
        List<(double Prob, int Id)> candidates = [];
        while (true)
        {
            candidates.Clear();
            double mass = 0;
            for (var i = 0; i < logits.Length; i++)
            {
                var prob = Math.Exp(logits[i] - max) / total;
                if (prob >= threshold && !float.IsNegativeInfinity(logits[i]))
                {
                    candidates.Add((prob, i));
                    mass += prob;
                }
            }
            if (mass >= p || threshold == 0) break;
            threshold = threshold < 1e-12 ? 0 : threshold * 1e-3;
        }
        candidates.Sort((a, b) => a.Prob != b.Prob ? b.Prob.CompareTo(a.Prob) : a.Id.CompareTo(b.Id));

        var keep = new HashSet<int>();
        double before = 0;
        foreach (var (prob, id) in candidates)
        {
            if (before >= p && keep.Count > 0) break;
            keep.Add(id);
            before += prob;
        }
        for (var i = 0; i < logits.Length; i++)
            if (!keep.Contains(i)) logits[i] = float.NegativeInfinity;
    }

    /// <summary>The largest logit's token; the lowest id among ties.</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        var best = 0;
        for (var i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }

    /// <summary>Draws from softmax(<paramref name="logits"/>) by inverse CDF over token ids in order, with <paramref name="uniform"/> in [0, 1).</summary>
    public static int SampleFromLogits(ReadOnlySpan<float> logits, double uniform)
    {
        var max = Max(logits);
        double total = 0;
        foreach (var value in logits) total += Math.Exp(value - max);
        var target = uniform * total;
        double cumulative = 0;
        var last = -1;
        for (var i = 0; i < logits.Length; i++)
        {
            if (float.IsNegativeInfinity(logits[i])) continue;
            cumulative += Math.Exp(logits[i] - max);
            last = i;
            if (cumulative > target) return i;
        }
        return last >= 0 ? last : ArgMax(logits); // rounding at the top end
    }

    /// <summary>log(softmax(logits)) of one token, and the normaliser to reuse: logsumexp of the row.</summary>
    public static double LogSumExp(ReadOnlySpan<float> logits)
    {
        var max = Max(logits);
        double sum = 0;
        foreach (var value in logits) sum += Math.Exp(value - max);
        return max + Math.Log(sum);
    }

    private static float Max(ReadOnlySpan<float> logits)
    {
        var max = float.NegativeInfinity;
        foreach (var value in logits)
            if (value > max) max = value;
        return max;
    }
}
