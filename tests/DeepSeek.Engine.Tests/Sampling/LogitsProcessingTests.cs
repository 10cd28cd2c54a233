using DeepSeek.Engine.Sampling;
using static TorchSharp.torch;

namespace DeepSeek.Engine.Tests.Sampling;

/// <summary>Each processing step on rows of logits tensors (CPU here; the same operations run on the GPU).</summary>
public sealed class LogitsProcessingTests
{
    private const float Masked = float.NegativeInfinity;

    private static Tensor Rows(params float[][] rows) => tensor(rows.SelectMany(r => r).ToArray()).view(rows.Length, rows[0].Length);

    private static Tensor Row(params float[] values) => Rows(values);

    private static float[] Values(Tensor row) => row.to(ScalarType.Float32).contiguous().data<float>().ToArray();

    private static Tensor Column(params float[] values) => tensor(values).unsqueeze(1);

    private static Tensor Mask(int vocab, params int[] ids)
    {
        var mask = new bool[vocab];
        foreach (var id in ids) mask[id] = true;
        return tensor(mask).unsqueeze(0);
    }

    [Fact]
    public void Repetition_penalty_divides_positive_and_multiplies_negative_logits_of_seen_tokens()
    {
        using var scope = NewDisposeScope();
        var result = LogitsProcessing.ApplyRepetitionPenalty(Row(2f, -2f, 1f, 0.5f), Mask(4, 0, 1), Column(2f));
        Assert.Equal([1f, -4f, 1f, 0.5f], Values(result));
    }

    [Fact]
    public void Presence_and_frequency_penalties_follow_openai()
    {
        using var scope = NewDisposeScope();
        var counts = Row(2f, 0f, 1f);
        var result = LogitsProcessing.ApplyPresenceFrequencyPenalties(Row(3f, 3f, 3f), counts, presence: Column(0.5f), frequency: Column(0.25f));
        Assert.Equal([2f, 3f, 2.25f], Values(result));
    }

    [Fact]
    public void Temperature_scales_each_row_by_its_own_value()
    {
        using var scope = NewDisposeScope();
        var result = LogitsProcessing.ApplyTemperature(Rows([1f, -2f], [1f, -2f]), Column(0.5f, 1f));
        Assert.Equal([2f, -4f, 1f, -2f], Values(result));
    }

    [Fact]
    public void Top_k_keeps_the_k_largest_and_ties_with_the_kth()
    {
        using var scope = NewDisposeScope();
        Tensor TopK(Tensor logits, long k) => LogitsProcessing.ApplyTopKTopP(logits.to(ScalarType.Float64), tensor(new[] { k }).unsqueeze(1), tensor(new[] { 1.0 }).unsqueeze(1));
        Assert.Equal([Masked, 5f, Masked, 5f, Masked], Values(TopK(Row(1f, 5f, 3f, 5f, 2f), 2)));
        Assert.Equal([Masked, 5f, 3f, 3f], Values(TopK(Row(1f, 5f, 3f, 3f), 2)));
        Assert.Equal([1f, 2f], Values(TopK(Row(1f, 2f), 2)));
        Assert.Equal([1f, 2f], Values(TopK(Row(1f, 2f), 0)));
    }

    [Theory]
    [InlineData(0.75f, new[] { true, true, false, false })] // 0.5 + 0.3 reaches 0.75
    [InlineData(0.81f, new[] { true, true, true, false })]
    [InlineData(0.01f, new[] { true, false, false, false })] // the most likely token always stays
    [InlineData(1f, new[] { true, true, true, true })]
    public void Top_p_keeps_the_smallest_set_reaching_p(float p, bool[] kept)
    {
        using var scope = NewDisposeScope();
        var logits = Row(MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.15f), MathF.Log(0.05f)).to(ScalarType.Float64);
        var result = LogitsProcessing.ApplyTopKTopP(logits, tensor(new[] { 0L }).unsqueeze(1), tensor(new[] { (double)p }).unsqueeze(1));
        Assert.Equal(kept, Values(result).Select(l => !float.IsNegativeInfinity(l)));
    }

    [Fact]
    public void Top_p_over_a_large_vocabulary_equals_a_full_sort_and_rows_do_not_mix()
    {
        using var scope = NewDisposeScope();
        var random = new Random(42);
        float[] ps = [0.1f, 0.5f, 0.9f, 0.99f, 0.999f];
        var rows = ps.Select(_ => Enumerable.Range(0, 5000).Select(_ => (float)(random.NextDouble() * 8)).ToArray()).ToArray();
        var result = LogitsProcessing.ApplyTopKTopP(Rows(rows).to(ScalarType.Float64), zeros(ps.Length, 1, ScalarType.Int64),
            tensor(ps.Select(p => (double)p).ToArray()).unsqueeze(1));
        for (var r = 0; r < ps.Length; r++)
        {
            var kept = Values(result[r]).Select((l, i) => (l, i)).Where(x => !float.IsNegativeInfinity(x.l)).Select(x => x.i).ToHashSet();
            Assert.Equal(NaiveTopP(rows[r], ps[r]), kept);
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
        using var scope = NewDisposeScope();
        Assert.Equal(1, LogitsProcessing.ArgMax(Row(0f, 3f, 3f, -1f)).item<long>());
    }

    [Theory]
    [InlineData(0.1, 0)]
    [InlineData(0.25, 1)]
    [InlineData(0.6, 3)]
    [InlineData(0.999999, 3)] // token 2 is masked: never drawn
    public void Sampling_inverts_the_cumulative_distribution_over_token_ids(double uniform, int expected)
    {
        using var scope = NewDisposeScope();
        var logits = Row(MathF.Log(0.2f), MathF.Log(0.3f), Masked, MathF.Log(0.5f));
        var token = LogitsProcessing.SampleFromLogits(logits, tensor(new[] { uniform }));
        Assert.Equal(expected, token.item<long>());
    }

    [Fact]
    public void Logprobs_are_the_log_softmax_of_the_raw_logits_with_rank_and_top_k()
    {
        using var scope = NewDisposeScope();
        var logZ = 3 + Math.Log(1 + Math.Exp(-1) + Math.Exp(-2)); // 3.40760596
        var results = LogprobCalculator.Compute(Rows([1f, 2f, 3f], [1f, 2f, 3f]), tensor(new[] { 1L, 0L }), [2, 0]);
        var result = results[0];
        Assert.Equal(1, result.Chosen.TokenId);
        Assert.Equal(2 - logZ, result.Chosen.Logprob, 5);
        Assert.Equal(2, result.ChosenRank);
        Assert.Equal([2, 1], result.Top.Select(t => t.TokenId));
        Assert.Equal(3 - logZ, result.Top[0].Logprob, 5);
        Assert.Empty(results[1].Top);
        Assert.Equal(3, results[1].ChosenRank);
    }

    [Fact]
    public void Top_logprobs_list_tied_tokens_lowest_id_first()
    {
        using var scope = NewDisposeScope();
        var result = LogprobCalculator.Compute(Row(2f, 5f, 1f, 5f), tensor(new[] { 3L }), [3])[0];
        Assert.Equal([1, 3, 0], result.Top.Select(t => t.TokenId));
        Assert.Equal(1, result.ChosenRank);
    }
}
