using DeepSeek.Engine.Sampling;

namespace DeepSeek.Engine.Tests.Sampling;

public sealed class LogitsProcessingTests
{
    private const float Masked = float.NegativeInfinity;

    [Fact]
    public void Repetition_penalty_divides_positive_and_multiplies_negative_logits_of_seen_tokens()
    {
        float[] logits = [2f, -2f, 1f, 0.5f];
        LogitsProcessing.ApplyRepetitionPenalty(logits, new HashSet<int> { 0, 1, 99 }, 2f);
        Assert.Equal([1f, -4f, 1f, 0.5f], logits);
    }

    [Fact]
    public void Presence_and_frequency_penalties_follow_openai()
    {
        float[] logits = [3f, 3f, 3f];
        LogitsProcessing.ApplyPresenceFrequencyPenalties(logits, new Dictionary<int, int> { [0] = 2, [2] = 1 }, presence: 0.5f, frequency: 0.25f);
        Assert.Equal([2f, 3f, 2.25f], logits);
    }

    [Fact]
    public void Temperature_scales_logits()
    {
        float[] logits = [1f, -2f];
        LogitsProcessing.ApplyTemperature(logits, 0.5f);
        Assert.Equal([2f, -4f], logits);
    }

    [Fact]
    public void Top_k_keeps_the_k_largest_and_ties_with_the_kth()
    {
        float[] logits = [1f, 5f, 3f, 5f, 2f];
        LogitsProcessing.ApplyTopK(logits, 2);
        Assert.Equal([Masked, 5f, Masked, 5f, Masked], logits);

        float[] tied = [1f, 5f, 3f, 3f];
        LogitsProcessing.ApplyTopK(tied, 2);
        Assert.Equal([Masked, 5f, 3f, 3f], tied);

        float[] all = [1f, 2f];
        LogitsProcessing.ApplyTopK(all, 2);
        LogitsProcessing.ApplyTopK(all, 0);
        Assert.Equal([1f, 2f], all);
    }

    [Theory]
    [InlineData(0.75f, new[] { true, true, false, false })] // 0.5 + 0.3 reaches 0.75
    [InlineData(0.81f, new[] { true, true, true, false })]
    [InlineData(0.01f, new[] { true, false, false, false })] // the most likely token always stays
    [InlineData(1f, new[] { true, true, true, true })]
    public void Top_p_keeps_the_smallest_set_reaching_p(float p, bool[] kept)
    {
        float[] logits = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.15f), MathF.Log(0.05f)];
        LogitsProcessing.ApplyTopP(logits, p);
        Assert.Equal(kept, logits.Select(l => !float.IsNegativeInfinity(l)));
    }

    [Fact]
    public void Top_p_over_a_large_vocabulary_equals_a_full_sort()
    {
        var random = new Random(42);
        foreach (var p in new[] { 0.1f, 0.5f, 0.9f, 0.99f, 0.999f })
        {
            var logits = Enumerable.Range(0, 5000).Select(_ => (float)(random.NextDouble() * 8)).ToArray();
            var expected = NaiveTopP(logits, p);
            LogitsProcessing.ApplyTopP(logits, p);
            Assert.Equal(expected, logits.Select((l, i) => (l, i)).Where(x => !float.IsNegativeInfinity(x.l)).Select(x => x.i).ToHashSet());
        }
    }

    private static HashSet<int> NaiveTopP(float[] logits, float p)
    {
        var max = logits.Max();
        var total = logits.Sum(l => Math.Exp(l - max));
        var order = logits.Select((l, i) => (Prob: Math.Exp(l - max) / total, Id: i)).OrderByDescending(x => x.Prob).ThenBy(x => x.Id);
        var kept = new HashSet<int>();
        double before = 0;
        foreach (var (prob, id) in order)
        {
            if (before >= p) break;
            kept.Add(id);
            before += prob;
        }
        return kept;
    }

    [Fact]
    public void Argmax_takes_the_lowest_id_among_ties()
    {
        Assert.Equal(1, LogitsProcessing.ArgMax([0f, 3f, 3f, -1f]));
    }

    [Theory]
    [InlineData(0.1, 0)]
    [InlineData(0.25, 1)]
    [InlineData(0.6, 3)]
    [InlineData(0.999999, 3)] // token 2 is masked: never drawn
    public void Sampling_inverts_the_cumulative_distribution_over_token_ids(double uniform, int expected)
    {
        float[] logits = [MathF.Log(0.2f), MathF.Log(0.3f), Masked, MathF.Log(0.5f)];
        var token = LogitsProcessing.SampleFromLogits(logits, uniform);
        Assert.Equal(expected, token);
    }

    [Fact]
    public void Logprobs_are_the_log_softmax_of_the_raw_logits_with_rank_and_top_k()
    {
        float[] logits = [1f, 2f, 3f];
        var logZ = 3 + Math.Log(1 + Math.Exp(-1) + Math.Exp(-2)); // 3.40760596
        var result = LogprobCalculator.Compute(logits, chosenTokenId: 1, topK: 2);
        Assert.Equal(1, result.Chosen.TokenId);
        Assert.Equal(2 - logZ, result.Chosen.Logprob, 5);
        Assert.Equal(2, result.ChosenRank);
        Assert.Equal([2, 1], result.Top.Select(t => t.TokenId));
        Assert.Equal(3 - logZ, result.Top[0].Logprob, 5);
        Assert.Empty(LogprobCalculator.Compute(logits, 0, 0).Top);
        Assert.Equal(3, LogprobCalculator.Compute(logits, 0, 0).ChosenRank);
    }
}
