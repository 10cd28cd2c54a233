using DeepSeek.Engine.IntegrationTests.Support;
using DeepSeek.Engine.Requests;
using static DeepSeek.Engine.IntegrationTests.Support.EngineHarness;

namespace DeepSeek.Engine.IntegrationTests;

/// <summary>
/// The engine while another thread collects garbage and runs finalizers without pause: a busy
/// server's other threads allocate, and a collection may land in the middle of any LibTorch call. A
/// Scalar that TorchSharp passes by handle is finalized then if nothing holds it, and the step
/// fails (an admitted request once ended with no tokens under a flood on a loaded machine); the
/// per-step code holds its Scalars (Modeling.HeldScalars), so every request gets its reference tokens.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class CollectionPressureTests
{
    /// <summary>Every sampling step (penalties, temperature, top-k, top-p, log-probabilities) runs too.</summary>
    private static readonly SamplingParameters Sampled = new()
    {
        Temperature = 0.8f, TopP = 0.9f, TopK = 20, Seed = 7, PresencePenalty = 0.4f, FrequencyPenalty = 0.2f,
        RepetitionPenalty = 1.1f, MinTokens = 4, MaxTokens = 12, Logprobs = 3,
    };

    [Theory]
    [InlineData(ReferenceCheckpoints.V3Tiny)]
    [InlineData(ReferenceCheckpoints.V2LiteTiny)]
    public async Task Requests_under_constant_collection_get_their_reference_tokens(string checkpoint)
    {
        var prompts = ReferenceCheckpoints.Prompts(checkpoint);
        await using var engine = await StartAsync(checkpoint,
            new EngineOptions { ServedModelName = "collected", MaxRunningRequests = 3, KvCacheBlocks = 128 });
        using var stop = new CancellationTokenSource();
        var collector = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        });
        try
        {
            // Several rounds of every prompt: thousands of LibTorch calls with a collection racing each.
            for (var round = 0; round < 10; round++)
            {
                var handles = prompts.Select(p => engine.Submit(p.InputIds, Greedy(p.ReliableGreedy.Length))).ToList();
                var sampled = engine.Submit(prompts[0].InputIds, Sampled);
                var results = await Task.WhenAll(handles.Select(CollectAsync));
                var sampledEnd = (await CollectAsync(sampled))[^1];
                Assert.True(sampledEnd.FinishReason is FinishReason.Length or FinishReason.Stop, $"round {round}, sampled: ended {sampledEnd.FinishReason} ({sampledEnd.ErrorMessage})");
                for (var i = 0; i < prompts.Count; i++)
                {
                    var last = results[i][^1];
                    Assert.True(last.FinishReason == FinishReason.Length, $"round {round}, prompt {i}: ended {last.FinishReason} ({last.ErrorMessage})");
                    Assert.Equal(prompts[i].ReliableGreedy, Tokens(results[i]));
                }
            }
        }
        finally
        {
            await stop.CancelAsync();
            await collector;
        }
    }
}
