using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Sampling;

namespace DeepSeek.Engine.Tests.Sampling;

public sealed class RequestSamplerTests
{
    private const int Eos = 3;

    /// <summary>A fixed logits row per (request, position): what a model would give regardless of batching.</summary>
    private static float[] Row(int request, int position)
    {
        var random = new Random((request * 1000) + position);
        return [.. Enumerable.Range(0, 32).Select(_ => (float)(random.NextDouble() * 4))];
    }

    private static SamplingParameters Seeded(ulong seed) => new() { Temperature = 0.9f, TopP = 0.95f, TopK = 20, Seed = seed };

    [Fact]
    public void Seeded_requests_give_the_same_tokens_whatever_the_batch_order()
    {
        int[][] Run(IReadOnlyList<int> order, int steps)
        {
            var samplers = Enumerable.Range(0, 3).Select(r => new RequestSampler(Seeded((ulong)(100 + r)), [1, 2], [Eos])).ToArray();
            var outputs = Enumerable.Range(0, 3).Select(_ => new List<int>()).ToArray();
            for (var step = 0; step < steps; step++)
            {
                foreach (var r in order)
                    outputs[r].Add(samplers[r].Sample(Row(r, step)).TokenId);
            }
            return [.. outputs.Select(o => o.ToArray())];
        }

        var forward = Run([0, 1, 2], 30);
        var backward = Run([2, 1, 0], 30);
        Assert.Equal(forward, backward);

        // Alone: request 1 without the others gives the same sequence.
        var alone = new RequestSampler(Seeded(101), [1, 2], [Eos]);
        Assert.Equal(forward[1], Enumerable.Range(0, 30).Select(step => alone.Sample(Row(1, step)).TokenId));

        // A different seed gives a different sequence: the randomness is used.
        var other = new RequestSampler(Seeded(999), [1, 2], [Eos]);
        Assert.NotEqual(forward[1], Enumerable.Range(0, 30).Select(step => other.Sample(Row(1, step)).TokenId));
    }

    [Fact]
    public void Greedy_picks_the_argmax_after_penalties()
    {
        var sampler = new RequestSampler(SamplingParameters.Greedy with { RepetitionPenalty = 2f }, promptTokenIds: [0], eosTokenIds: []);
        // Token 0 (3.0) is in the prompt: 3.0 / 2 = 1.5 < 2.0.
        Assert.Equal(1, sampler.Sample([3f, 2f, 1f]).TokenId);
        Assert.Equal(1, sampler.NumGenerated);
    }

    [Fact]
    public void Frequency_penalty_counts_generated_tokens_only()
    {
        var sampler = new RequestSampler(SamplingParameters.Greedy with { FrequencyPenalty = 0.6f }, promptTokenIds: [0, 0, 0], eosTokenIds: []);
        float[] row = [2f, 1f];
        Assert.Equal(0, sampler.Sample(row).TokenId); // 2.0 vs 1.0: the prompt's zeros do not count
        Assert.Equal(0, sampler.Sample(row).TokenId); // 1.4 vs 1.0
        Assert.Equal(1, sampler.Sample(row).TokenId); // 0.8 vs 1.0
    }

    [Fact]
    public void End_of_sequence_and_stop_ids_are_masked_until_min_tokens()
    {
        var sampler = new RequestSampler(SamplingParameters.Greedy with { MinTokens = 2, StopTokenIds = [2] }, [], [Eos]);
        float[] row = [0f, 1f, 5f, 6f];
        Assert.Equal(1, sampler.Sample(row).TokenId);
        Assert.Equal(1, sampler.Sample(row).TokenId);
        Assert.Equal(Eos, sampler.Sample(row).TokenId);
    }

    [Fact]
    public void Sampling_follows_the_distribution()
    {
        var sampler = new RequestSampler(new SamplingParameters { Seed = 7 }, [], []);
        float[] row = [MathF.Log(0.2f), MathF.Log(0.8f)];
        var ones = Enumerable.Range(0, 4000).Count(_ => sampler.Sample(row).TokenId == 1);
        Assert.InRange(ones, 3000, 3400); // 3200 expected; ±6 standard deviations
    }

    [Fact]
    public void Top_k_of_one_is_greedy_and_logprobs_come_from_raw_logits()
    {
        var sampler = new RequestSampler(new SamplingParameters { Temperature = 0.5f, TopK = 1, Logprobs = 1, Seed = 1 }, [], []);
        float[] row = [1f, 2f, 3f];
        var sampled = sampler.Sample(row);
        Assert.Equal(2, sampled.TokenId);
        var expected = 3 - (3 + Math.Log(1 + Math.Exp(-1) + Math.Exp(-2)));
        Assert.Equal(expected, sampled.Logprobs!.Chosen.Logprob, 5);
        Assert.Equal(2, Assert.Single(sampled.Logprobs.Top).TokenId);
    }
}
