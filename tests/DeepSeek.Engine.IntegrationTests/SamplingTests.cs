using DeepSeek.Engine.IntegrationTests.Support;
using DeepSeek.Engine.Requests;
using static DeepSeek.Engine.IntegrationTests.Support.EngineHarness;

namespace DeepSeek.Engine.IntegrationTests;

/// <summary>Sampling on the model's device, through the engine: a seeded request's tokens do not depend on the batch.</summary>
[Collection(EngineCollection.Name)]
public sealed class SamplingTests
{
    private static readonly SamplingParameters Seeded = new()
    {
        Temperature = 0.8f, TopP = 0.9f, TopK = 20, Seed = 42, PresencePenalty = 0.4f, RepetitionPenalty = 1.1f,
        MaxTokens = 24, Logprobs = 3, IgnoreEos = true,
    };

    [Fact]
    public async Task A_seeded_request_gives_the_same_tokens_alone_and_batched_with_others()
    {
        var prompts = ReferenceCheckpoints.Prompts(ReferenceCheckpoints.V3Tiny);
        List<TokenEvent> alone;
        await using (var engine = await StartAsync(ReferenceCheckpoints.V3Tiny, new EngineOptions { ServedModelName = "seed-alone", KvCacheBlocks = 256 }))
            alone = await CollectAsync(engine.Submit(prompts[0].InputIds, Seeded));

        // Busy: other requests with other parameters, prompts prefilled in chunks of 7 beside decodes.
        await using var busy = await StartAsync(ReferenceCheckpoints.V3Tiny, new EngineOptions { ServedModelName = "seed-busy", KvCacheBlocks = 256, MaxBatchTokens = 7 });
        var others = new List<GenerationHandle>
        {
            busy.Submit(prompts[1].InputIds, Seeded with { Seed = 1 }),
            busy.Submit(prompts[2].InputIds, Greedy(20)),
        };
        var batched = busy.Submit(prompts[0].InputIds, Seeded);
        others.Add(busy.Submit(prompts[3].InputIds, new SamplingParameters { Temperature = 1.2f, Seed = 7, MaxTokens = 30, IgnoreEos = true, FrequencyPenalty = 0.5f }));
        var otherSeed = busy.Submit(prompts[0].InputIds, Seeded with { Seed = 43 });
        var results = await CollectAsync(batched);
        await Task.WhenAll(others.Select(CollectAsync));

        Assert.Equal(24, Tokens(alone).Length);
        Assert.Equal(Tokens(alone), Tokens(results));
        var aloneLogprobs = alone.Where(e => e.TokenId is not null).Select(e => e.Logprobs!).ToList();
        var batchedLogprobs = results.Where(e => e.TokenId is not null).Select(e => e.Logprobs!).ToList();
        for (var i = 0; i < aloneLogprobs.Count; i++)
        {
            Assert.Equal(aloneLogprobs[i].Top.Select(t => t.TokenId), batchedLogprobs[i].Top.Select(t => t.TokenId));
            Assert.Equal(aloneLogprobs[i].Chosen.Logprob, batchedLogprobs[i].Chosen.Logprob, 4);
            Assert.Equal(aloneLogprobs[i].ChosenRank, batchedLogprobs[i].ChosenRank);
        }
        // The seed is what makes them equal: another seed on the same prompt in the same batch differs.
        Assert.NotEqual(Tokens(alone), Tokens(await CollectAsync(otherSeed)));
    }
}
