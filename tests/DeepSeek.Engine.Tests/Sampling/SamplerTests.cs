using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Sampling;
using static TorchSharp.torch;

namespace DeepSeek.Engine.Tests.Sampling;

/// <summary>The batch sampler on CPU tensors: per-request semantics, and tokens that do not depend on the batch.</summary>
public sealed class SamplerTests
{
    private const int Eos = 3;

    /// <summary>A fixed logits row per (request, position): what a model would give regardless of batching.</summary>
    private static float[] Row(int request, int position)
    {
        var random = new Random((request * 1000) + position);
        return [.. Enumerable.Range(0, 32).Select(_ => (float)(random.NextDouble() * 4))];
    }

    private static SamplingParameters Seeded(ulong seed) => new() { Temperature = 0.9f, TopP = 0.95f, TopK = 20, Seed = seed };

    /// <summary>Samples one step for <paramref name="requests"/> from their rows and appends the tokens, as the scheduler would.</summary>
    private static SampledToken[] Step(Sampler sampler, EngineRequest[] requests, float[][] rows)
    {
        using var scope = NewDisposeScope();
        var logits = tensor(rows.SelectMany(r => r).ToArray()).view(rows.Length, rows[0].Length);
        var sampled = sampler.Sample(logits, requests);
        for (var i = 0; i < requests.Length; i++) requests[i].AppendOutputToken(sampled[i].TokenId);
        return sampled;
    }

    private static int Sample(Sampler sampler, EngineRequest request, params float[] row) => Step(sampler, [request], [row])[0].TokenId;

    [Fact]
    public void Seeded_requests_give_the_same_tokens_whatever_the_batch_order()
    {
        int[][] Run(IReadOnlyList<int> order, int steps)
        {
            var sampler = new Sampler([Eos]);
            var requests = Enumerable.Range(0, 3).Select(r => new EngineRequest($"r{r}", [1, 2], Seeded((ulong)(100 + r)))).ToArray();
            for (var step = 0; step < steps; step++)
                Step(sampler, [.. order.Select(r => requests[r])], [.. order.Select(r => Row(r, step))]);
            return [.. requests.Select(r => r.OutputTokenIds.ToArray())];
        }

        var forward = Run([0, 1, 2], 30);
        var backward = Run([2, 1, 0], 30);
        Assert.Equal(forward, backward);

        // Alone: request 1 without the others gives the same sequence.
        Assert.Equal(forward[1], Run([1], 30)[1]);

        // A different seed gives a different sequence: the randomness is used.
        var sampler = new Sampler([Eos]);
        var other = new EngineRequest("other", [1, 2], Seeded(999));
        Assert.NotEqual(forward[1], Enumerable.Range(0, 30).Select(step => Sample(sampler, other, Row(1, step))));
    }

    [Fact]
    public void Rows_with_different_parameters_in_one_batch_sample_as_they_do_alone()
    {
        SamplingParameters[] parameters =
        [
            SamplingParameters.Greedy with { RepetitionPenalty = 1.5f },
            new() { Temperature = 0.7f, TopK = 5, Seed = 1, PresencePenalty = 0.5f, FrequencyPenalty = 0.3f },
            new() { Temperature = 1.3f, TopP = 0.5f, Seed = 2, MinTokens = 4 },
            new() { Seed = 3, Logprobs = 3 },
        ];
        (int[] Tokens, SampledLogprobs?[] Logprobs) Alone(int r)
        {
            var sampler = new Sampler([Eos]);
            var request = new EngineRequest("r", [4, 5, 6], parameters[r]);
            var logprobs = Enumerable.Range(0, 12).Select(step => Step(sampler, [request], [Row(r, step)])[0].Logprobs).ToArray();
            return (request.OutputTokenIds.ToArray(), logprobs);
        }

        var batched = new Sampler([Eos]);
        var requests = parameters.Select((p, r) => new EngineRequest($"r{r}", [4, 5, 6], p)).ToArray();
        var batchLogprobs = new List<SampledLogprobs?>();
        for (var step = 0; step < 12; step++)
            batchLogprobs.Add(Step(batched, requests, [.. requests.Select((_, r) => Row(r, step))])[3].Logprobs);

        for (var r = 0; r < parameters.Length; r++) Assert.Equal(Alone(r).Tokens, requests[r].OutputTokenIds);
        var aloneLogprobs = Alone(3).Logprobs;
        for (var step = 0; step < 12; step++)
        {
            Assert.Equal(aloneLogprobs[step]!.Chosen, batchLogprobs[step]!.Chosen);
            Assert.Equal(aloneLogprobs[step]!.Top, batchLogprobs[step]!.Top);
        }
        Assert.All(requests[2].OutputTokenIds.Take(4), token => Assert.NotEqual(Eos, token));
    }

    [Fact]
    public void Greedy_picks_the_argmax_after_penalties()
    {
        var sampler = new Sampler([]);
        var request = new EngineRequest("r", [0], SamplingParameters.Greedy with { RepetitionPenalty = 2f });
        // Token 0 (3.0) is in the prompt: 3.0 / 2 = 1.5 < 2.0.
        Assert.Equal(1, Sample(sampler, request, 3f, 2f, 1f));
    }

    [Fact]
    public void Frequency_penalty_counts_generated_tokens_only()
    {
        var sampler = new Sampler([]);
        var request = new EngineRequest("r", [0, 0, 0], SamplingParameters.Greedy with { FrequencyPenalty = 0.6f });
        Assert.Equal(0, Sample(sampler, request, 2f, 1f)); // 2.0 vs 1.0: the prompt's zeros do not count
        Assert.Equal(0, Sample(sampler, request, 2f, 1f)); // 1.4 vs 1.0
        Assert.Equal(1, Sample(sampler, request, 2f, 1f)); // 0.8 vs 1.0
    }

    [Fact]
    public void End_of_sequence_and_stop_ids_are_masked_until_min_tokens()
    {
        var sampler = new Sampler([Eos]);
        var request = new EngineRequest("r", [9], SamplingParameters.Greedy with { MinTokens = 2, StopTokenIds = [2] });
        Assert.Equal(1, Sample(sampler, request, 0f, 1f, 5f, 6f));
        Assert.Equal(1, Sample(sampler, request, 0f, 1f, 5f, 6f));
        Assert.Equal(Eos, Sample(sampler, request, 0f, 1f, 5f, 6f));
    }

    [Fact]
    public void Sampling_follows_the_distribution()
    {
        var sampler = new Sampler([]);
        var request = new EngineRequest("r", [1], new SamplingParameters { Seed = 7 });
        var ones = Enumerable.Range(0, 4000).Count(_ => Sample(sampler, request, MathF.Log(0.2f), MathF.Log(0.8f)) == 1);
        Assert.InRange(ones, 3000, 3400); // 3200 expected; ±6 standard deviations
    }

    [Fact]
    public void Top_k_of_one_is_greedy_and_logprobs_come_from_raw_logits()
    {
        var sampler = new Sampler([]);
        var request = new EngineRequest("r", [1], new SamplingParameters { Temperature = 0.5f, TopK = 1, Logprobs = 1, Seed = 1 });
        var sampled = Step(sampler, [request], [[1f, 2f, 3f]])[0];
        Assert.Equal(2, sampled.TokenId);
        var expected = 3 - (3 + Math.Log(1 + Math.Exp(-1) + Math.Exp(-2)));
        Assert.Equal(expected, sampled.Logprobs!.Chosen.Logprob, 5);
        Assert.Equal(2, Assert.Single(sampled.Logprobs.Top).TokenId);
    }

    [Fact]
    public void A_forgotten_request_starts_its_generator_again()
    {
        var sampler = new Sampler([]);
        var first = new EngineRequest("r", [1], Seeded(5));
        var tokens = Enumerable.Range(0, 10).Select(step => Sample(sampler, first, Row(0, step))).ToArray();
        Assert.Equal(1, sampler.Count);
        sampler.Forget(["r"]);
        Assert.Equal(0, sampler.Count);
        var again = new EngineRequest("r", [1], Seeded(5));
        Assert.Equal(tokens, Enumerable.Range(0, 10).Select(step => Sample(sampler, again, Row(0, step))));
    }
}
