using DeepSeek.Engine.Admission;
using DeepSeek.Engine.IntegrationTests.Support;
using DeepSeek.Engine.Requests;
using static DeepSeek.Engine.IntegrationTests.Support.EngineHarness;

namespace DeepSeek.Engine.IntegrationTests;

/// <summary>The engine on the reference checkpoints: what comes out equals Hugging Face's greedy continuations, whatever the batching.</summary>
[Collection(EngineCollection.Name)]
public sealed class ServingTests
{
    [Theory]
    [InlineData(ReferenceCheckpoints.V3Tiny, 2048)]
    [InlineData(ReferenceCheckpoints.V2LiteTiny, 2048)]
    [InlineData(ReferenceCheckpoints.V3Tiny, 7)] // prompts prefilled in chunks of at most 7 tokens, mixed with decodes
    public async Task Concurrent_requests_return_the_reference_greedy_continuations(string checkpoint, int maxBatchTokens)
    {
        var prompts = ReferenceCheckpoints.Prompts(checkpoint);
        await using var engine = await StartAsync(checkpoint, new EngineOptions { ServedModelName = checkpoint, MaxBatchTokens = maxBatchTokens, KvCacheBlocks = 256 });

        var handles = prompts.Select(p => engine.Submit(p.InputIds, Greedy(p.ReliableGreedy.Length))).ToList();
        var results = await Task.WhenAll(handles.Select(CollectAsync));

        for (var i = 0; i < prompts.Count; i++)
        {
            Assert.Equal(prompts[i].ReliableGreedy, Tokens(results[i]));
            var last = results[i][^1];
            Assert.Equal(FinishReason.Length, last.FinishReason);
            Assert.Equal(new UsageInfo(prompts[i].InputIds.Length, prompts[i].ReliableGreedy.Length, 0), last.Usage);
        }
    }

    [Fact]
    public async Task A_repeated_prompt_hits_the_prefix_cache_and_gives_the_same_tokens()
    {
        var prompt = ReferenceCheckpoints.Prompts(ReferenceCheckpoints.V3Tiny)[1]; // 22 tokens: 5 full blocks of 4
        await using var engine = await StartAsync(ReferenceCheckpoints.V3Tiny, new EngineOptions { ServedModelName = "prefix", BlockSize = 4, KvCacheBlocks = 64 });

        var first = await CollectAsync(engine.Submit(prompt.InputIds, Greedy(prompt.ReliableGreedy.Length)));
        Assert.Equal(0, first[^1].Usage!.CachedPromptTokens);
        var second = await CollectAsync(engine.Submit(prompt.InputIds, Greedy(prompt.ReliableGreedy.Length)));

        Assert.Equal(prompt.ReliableGreedy, Tokens(first));
        Assert.Equal(prompt.ReliableGreedy, Tokens(second));
        Assert.Equal(20, second[^1].Usage!.CachedPromptTokens);
        Assert.True(await EventuallyAsync(() => engine.GetLoad().PrefixCacheHitTokens == 20));
        Assert.Equal(44, engine.GetLoad().PrefixCacheQueriedTokens);
    }

    [Fact]
    public async Task A_flood_past_the_queue_bound_is_refused_and_every_admitted_request_completes()
    {
        var prompt = ReferenceCheckpoints.Prompts(ReferenceCheckpoints.V3Tiny)[0];
        await using var engine = await StartAsync(ReferenceCheckpoints.V3Tiny,
            new EngineOptions { ServedModelName = "flood", MaxQueuedRequests = 2, MaxRunningRequests = 1, KvCacheBlocks = 64 });

        var admitted = new List<GenerationHandle>();
        var refused = 0;
        for (var i = 0; i < 12; i++)
        {
            try
            {
                admitted.Add(engine.Submit(prompt.InputIds, Greedy(prompt.ReliableGreedy.Length)));
            }
            catch (EngineOverloadedException e)
            {
                refused++;
                Assert.Contains("--max-queued-requests", e.Message, StringComparison.Ordinal);
            }
        }

        // Two wait in the queue; at most one more was already taken into the running batch.
        Assert.InRange(admitted.Count, 2, 3);
        Assert.Equal(12 - admitted.Count, refused);
        foreach (var events in await Task.WhenAll(admitted.Select(CollectAsync)))
        {
            // How the stream ended first: a stream cut short says why (an error, a cancellation) before its tokens are compared.
            Assert.True(events[^1].FinishReason == FinishReason.Length, $"ended {events[^1].FinishReason} ({events[^1].FailureReason}: {events[^1].ErrorMessage}) after {Tokens(events).Length} tokens");
            Assert.Equal(prompt.ReliableGreedy, Tokens(events));
        }
    }

    [Fact]
    public async Task A_cancelled_request_ends_cancelled_and_frees_its_blocks()
    {
        // The engine thread is held after the first step until the test has cancelled, so the request is
        // cancelled mid-generation however fast or slow the machine is (it once finished first under load).
        using var firstStepDone = new SemaphoreSlim(0);
        using var release = new SemaphoreSlim(0);
        var held = 0;
        void HoldFirstStep(Execution.StepTiming _)
        {
            if (Interlocked.Exchange(ref held, 1) != 0) return;
            firstStepDone.Release();
            release.Wait(Patience);
        }
        var prompt = ReferenceCheckpoints.Prompts(ReferenceCheckpoints.V3Tiny)[0];
        await using var engine = await StartAsync(ReferenceCheckpoints.V3Tiny, new EngineOptions { ServedModelName = "cancel", KvCacheBlocks = 64 }, onStep: HoldFirstStep);
        using var cancel = new CancellationTokenSource();

        var handle = engine.Submit(prompt.InputIds, Greedy(200), cancel.Token);
        Assert.True(await firstStepDone.WaitAsync(Patience));
        Assert.True(engine.GetLoad().KvCacheUsage > 0); // published before the step's observer runs
        await cancel.CancelAsync();
        release.Release();
        var events = await CollectAsync(handle);

        Assert.Equal(FinishReason.Cancelled, events[^1].FinishReason);
        Assert.Single(Tokens(events)); // the first step's token, then nothing: the cancellation landed at the next step boundary
        Assert.True(await EventuallyAsync(() => engine.GetLoad() is { KvCacheUsage: 0, Running: 0, Waiting: 0 }));
    }

    [Fact]
    public async Task Preemption_under_a_tiny_pool_still_gives_every_request_its_reference_tokens()
    {
        var prompts = ReferenceCheckpoints.Prompts(ReferenceCheckpoints.V3Tiny).Where(p => p.InputIds.Length + p.ReliableGreedy.Length <= 64).ToList();
        // 16 blocks of 4 = 64 tokens: one request fits alone, three together outgrow the pool and take turns.
        await using var engine = await StartAsync(ReferenceCheckpoints.V3Tiny, new EngineOptions { ServedModelName = "preempt", BlockSize = 4, KvCacheBlocks = 16 });
        Assert.True(prompts.Count >= 3);
        Assert.True(prompts.Sum(p => p.InputIds.Length + p.ReliableGreedy.Length) > 64);

        var handles = prompts.Select(p => engine.Submit(p.InputIds, Greedy(p.ReliableGreedy.Length))).ToList();
        var results = await Task.WhenAll(handles.Select(CollectAsync));

        for (var i = 0; i < prompts.Count; i++) Assert.Equal(prompts[i].ReliableGreedy, Tokens(results[i]));
        Assert.True(engine.GetLoad().Preemptions > 0);
        Assert.True(await EventuallyAsync(() => engine.GetLoad().KvCacheUsage == 0));
    }

    [Fact]
    public async Task Drain_finishes_in_flight_requests_and_refuses_new_ones()
    {
        var prompts = ReferenceCheckpoints.Prompts(ReferenceCheckpoints.V2LiteTiny);
        var engine = await StartAsync(ReferenceCheckpoints.V2LiteTiny, new EngineOptions { ServedModelName = "drain", KvCacheBlocks = 64 });
        var handles = prompts.Take(2).Select(p => engine.Submit(p.InputIds, Greedy(p.ReliableGreedy.Length))).ToList();

        var drain = engine.DrainAsync(Patience);
        Assert.Throws<EngineDrainingException>(() => engine.Submit(prompts[2].InputIds, Greedy(4)));
        Assert.True(engine.GetLoad().Draining);
        Assert.Equal(EngineState.Draining, engine.State);
        var results = await Task.WhenAll(handles.Select(CollectAsync));
        await drain.WaitAsync(Patience);

        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(prompts[i].ReliableGreedy, Tokens(results[i]));
            Assert.Equal(FinishReason.Length, results[i][^1].FinishReason);
        }
        Assert.True(engine.Stopped.IsCompleted);
        Assert.Equal(EngineState.Stopped, engine.State);
        Assert.Null(engine.Failure);
    }

    [Fact]
    public async Task Drain_past_its_timeout_cancels_what_is_left()
    {
        var prompt = ReferenceCheckpoints.Prompts(ReferenceCheckpoints.V3Tiny)[0];
        var engine = await StartAsync(ReferenceCheckpoints.V3Tiny, new EngineOptions { ServedModelName = "drain-timeout", KvCacheBlocks = 64 });
        var handle = engine.Submit(prompt.InputIds, Greedy(230));

        await engine.DrainAsync(TimeSpan.Zero).WaitAsync(Patience);
        var events = await CollectAsync(handle);

        Assert.Equal(FinishReason.Cancelled, events[^1].FinishReason);
        Assert.True(Tokens(events).Length < 230);
        Assert.True(engine.Stopped.IsCompleted);
    }

    [Fact]
    public async Task A_prompt_longer_than_the_context_is_refused_before_it_takes_resources()
    {
        await using var engine = await StartAsync(ReferenceCheckpoints.V3Tiny, new EngineOptions { ServedModelName = "too-long", KvCacheBlocks = 64 });
        var error = Assert.Throws<InvalidRequestException>(() => engine.Submit(Enumerable.Repeat(5, 300).ToArray(), Greedy(4)));
        Assert.Equal("context_length_exceeded", error.Code);
        var outOfVocabulary = Assert.Throws<InvalidRequestException>(() => engine.Submit([1, 2, 999], Greedy(4)));
        Assert.Contains("vocabulary", outOfVocabulary.Message, StringComparison.Ordinal);
        Assert.Equal(0, engine.GetLoad().Waiting);
    }
}
