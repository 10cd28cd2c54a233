using DeepSeek.Engine.Execution;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Sampling;
using DeepSeek.Engine.Scheduling;

namespace DeepSeek.Engine.Tests.Scheduling;

public sealed class SchedulerTests
{
    private static readonly EngineOptions Options = new() { MaxBatchTokens = 32, MaxRunningRequests = 8, MaxModelLength = 256 };

    private static int[] Prompt(int seed, int length)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, length).Select(_ => random.Next(1, 50))];
    }

    private static SamplingParameters Tokens(int max) => SamplingParameters.Greedy with { MaxTokens = max, IgnoreEos = true };

    [Fact]
    public void Decodes_come_first_and_a_long_prompt_is_prefilled_in_chunks_beside_them()
    {
        var loop = new EngineLoop(Options, numBlocks: 128, blockSize: 4);
        var shortRequest = new EngineRequest("short", Prompt(1, 5), Tokens(40));
        loop.Scheduler.Add(shortRequest);
        loop.Step(); // prefill of "short", samples its first token
        Assert.Single(shortRequest.OutputTokenIds);

        var longRequest = new EngineRequest("long", Prompt(2, 100), Tokens(3));
        loop.Scheduler.Add(longRequest);
        var chunks = new List<ScheduledSequence>();
        while (longRequest.OutputTokenIds.Count == 0)
        {
            loop.Step();
            var step = loop.Steps[^1];
            Assert.Equal(2, step.Sequences.Count);
            Assert.Equal(shortRequest, step.Sequences[0].Request);
            Assert.True(step.Sequences[0].IsDecode);
            chunks.Add(step.Sequences[1]);
        }

        // 100 prompt tokens in chunks of 31 beside one decode each: 31, 31, 31, 7; only the last samples.
        Assert.Equal([31, 31, 31, 7], chunks.Select(c => c.NumTokens));
        Assert.Equal([0, 31, 62, 93], chunks.Select(c => c.StartPosition));
        Assert.Equal([false, false, false, true], chunks.Select(c => c.SamplesToken));
        Assert.Equal(1 + chunks.Count, shortRequest.OutputTokenIds.Count);
    }

    [Fact]
    public void Running_requests_are_bounded_and_the_rest_wait_in_arrival_order()
    {
        var loop = new EngineLoop(Options with { MaxRunningRequests = 2 }, numBlocks: 128, blockSize: 4);
        var requests = Enumerable.Range(0, 5).Select(i => new EngineRequest($"r{i}", Prompt(i, 4), Tokens(3))).ToList();
        requests.ForEach(loop.Scheduler.Add);

        loop.Step();
        Assert.Equal(["r0", "r1"], loop.Steps[^1].Sequences.Select(s => s.Request.Id));
        Assert.Equal(3, loop.Scheduler.NumWaiting);
        loop.RunToCompletion();
        var admittedOrder = loop.Steps.SelectMany(s => s.Sequences).Where(s => s.StartPosition == 0).Select(s => s.Request.Id);
        Assert.Equal(["r0", "r1", "r2", "r3", "r4"], admittedOrder);
    }

    [Fact]
    public void Preemption_under_a_tiny_pool_completes_every_request_with_the_tokens_it_gets_alone()
    {
        // 12 blocks of 4 = 48 slots for 10 requests that each grow to 30 tokens.
        var options = Options with { MaxBatchTokens = 16, EnablePrefixCaching = true };
        var loop = new EngineLoop(options, numBlocks: 12, blockSize: 4);
        var requests = Enumerable.Range(0, 10)
            .Select(i => new EngineRequest($"r{i}", Prompt(100 + i, 6 + (i % 5)), Tokens(20 - (i % 5))))
            .ToList();
        requests.ForEach(loop.Scheduler.Add);

        loop.RunToCompletion();

        Assert.True(loop.Preemptions > 0, "the pool was meant to run out");
        foreach (var request in requests)
        {
            Assert.Equal(RequestState.Finished, request.State);
            Assert.Equal(FinishReason.Length, request.FinishReason);
            Assert.Equal(EngineLoop.RunAlone(request.PromptTokenIds, request.Sampling, options), request.OutputTokenIds);
        }
        Assert.Equal(0, loop.Pool.UsageRatio);
        Assert.Equal(loop.Pool.NumBlocks, loop.Pool.NumFreeBlocks);
    }

    [Fact]
    public void Batched_greedy_output_equals_output_alone_with_end_of_sequence_stops()
    {
        var options = Options;
        var loop = new EngineLoop(options, numBlocks: 64, blockSize: 4, vocabularySize: 12, eosTokenIds: [7]);
        var requests = Enumerable.Range(0, 12)
            .Select(i => new EngineRequest($"r{i}", Prompt(200 + i, 3 + i), SamplingParameters.Greedy with { MaxTokens = 30 }))
            .ToList();
        requests.ForEach(loop.Scheduler.Add);
        loop.RunToCompletion();

        foreach (var request in requests)
            Assert.Equal(EngineLoop.RunAlone(request.PromptTokenIds, request.Sampling, options, vocabularySize: 12, eosTokenIds: [7]), request.OutputTokenIds);
        Assert.Contains(requests, r => r.FinishReason == FinishReason.Stop && r.OutputTokenIds[^1] == 7);
    }

    [Fact]
    public void An_identical_prompt_reuses_cached_blocks_but_computes_its_last_token()
    {
        var loop = new EngineLoop(Options, numBlocks: 64, blockSize: 4);
        var prompt = Prompt(3, 32);
        var first = new EngineRequest("first", prompt, Tokens(5));
        loop.Scheduler.Add(first);
        loop.RunToCompletion();

        var second = new EngineRequest("second", prompt, Tokens(5));
        loop.Scheduler.Add(second);
        loop.Step();

        // 32 tokens = 8 full blocks, but the last token must run for its logits: 7 blocks come from cache.
        var sequence = Assert.Single(loop.Steps[^1].Sequences);
        Assert.Equal(28, sequence.StartPosition);
        Assert.Equal(4, sequence.NumTokens);
        Assert.Equal(28, second.NumCachedPromptTokens);
        Assert.Equal(first.BlockHashes.Take(7), second.BlockHashes.Take(7));
        loop.RunToCompletion();

        Assert.Equal(first.OutputTokenIds, second.OutputTokenIds);
        Assert.Equal(64, loop.Scheduler.PrefixCache.QueriedTokens);
        Assert.Equal(28, loop.Scheduler.PrefixCache.HitTokens);
        Assert.Equal(28, second.Usage.CachedPromptTokens);
    }

    [Fact]
    public void Concurrent_requests_sharing_a_prefix_share_its_blocks()
    {
        var loop = new EngineLoop(Options with { MaxBatchTokens = 64 }, numBlocks: 64, blockSize: 4);
        var system = Prompt(4, 16);
        var warm = new EngineRequest("warm", [.. system, 1], Tokens(1));
        loop.Scheduler.Add(warm);
        loop.RunToCompletion();

        var a = new EngineRequest("a", [.. system, 5, 6, 7], Tokens(10));
        var b = new EngineRequest("b", [.. system, 8, 9], Tokens(10));
        loop.Scheduler.Add(a);
        loop.Scheduler.Add(b);
        loop.Step();
        Assert.Equal(a.BlockTable.BlockIds.Take(4), b.BlockTable.BlockIds.Take(4));
        Assert.All(a.BlockTable.BlockIds.Take(4), block => Assert.Equal(2, loop.Pool.RefCount(block)));
        loop.RunToCompletion();
        Assert.Equal(EngineLoop.RunAlone(a.PromptTokenIds, a.Sampling, Options), a.OutputTokenIds);
        Assert.Equal(EngineLoop.RunAlone(b.PromptTokenIds, b.Sampling, Options), b.OutputTokenIds);
    }

    [Fact]
    public void Cancellation_frees_blocks_at_the_next_step_and_usage_returns_to_zero()
    {
        var loop = new EngineLoop(Options, numBlocks: 64, blockSize: 4);
        var requests = Enumerable.Range(0, 4).Select(i => new EngineRequest($"r{i}", Prompt(i, 10), Tokens(100))).ToList();
        requests.ForEach(loop.Scheduler.Add);
        loop.Step();
        loop.Step();
        Assert.True(loop.Pool.UsageRatio > 0);

        Assert.True(loop.Scheduler.Cancel("r1"));
        Assert.Equal(RequestState.Running, requests[1].State); // nothing happens until the next step
        loop.Step();
        var cancelled = Assert.Single(loop.Steps[^1].Cancelled);
        Assert.Equal("r1", cancelled.Id);
        Assert.Equal(FinishReason.Cancelled, requests[1].FinishReason);
        Assert.Equal(0, requests[1].BlockTable.Count);
        Assert.DoesNotContain(loop.Steps[^1].Sequences, s => s.Request.Id == "r1");

        foreach (var id in new[] { "r0", "r2", "r3" }) loop.Scheduler.Cancel(id);
        loop.Step();
        Assert.False(loop.Scheduler.HasUnfinishedRequests);
        Assert.Equal(0, loop.Pool.UsageRatio);
        Assert.False(loop.Scheduler.Cancel("r0"));
    }

    [Fact]
    public void A_waiting_request_can_be_cancelled_before_it_runs()
    {
        var loop = new EngineLoop(Options with { MaxRunningRequests = 1 }, numBlocks: 64, blockSize: 4);
        var running = new EngineRequest("running", Prompt(1, 4), Tokens(3));
        var waiting = new EngineRequest("waiting", Prompt(2, 4), Tokens(3));
        loop.Scheduler.Add(running);
        loop.Scheduler.Add(waiting);
        loop.Step();
        loop.Scheduler.Cancel("waiting");
        loop.RunToCompletion();
        Assert.Equal(FinishReason.Cancelled, waiting.FinishReason);
        Assert.Empty(waiting.OutputTokenIds);
        Assert.Equal(3, running.OutputTokenIds.Count);
    }

    [Fact]
    public void Stop_token_ids_wait_for_min_tokens_and_max_tokens_ends_with_length()
    {
        var loop = new EngineLoop(Options, numBlocks: 64, blockSize: 4, vocabularySize: 5);
        var prompt = Prompt(9, 6);
        var reference = EngineLoop.RunAlone(prompt, Tokens(12), Options, vocabularySize: 5);
        var stopToken = reference[1];
        var firstStop = reference.Select((t, i) => (t, i)).First(x => x.t == stopToken && x.i >= 2).i;

        var request = new EngineRequest("r", prompt, SamplingParameters.Greedy with { MaxTokens = 12, StopTokenIds = [stopToken], MinTokens = 3 });
        loop.Scheduler.Add(request);
        loop.RunToCompletion();

        Assert.Equal(FinishReason.Stop, request.FinishReason);
        Assert.Equal(reference.Take(firstStop + 1), request.OutputTokenIds);
    }

    [Fact]
    public void Finish_from_a_stop_string_frees_the_request_between_steps()
    {
        var loop = new EngineLoop(Options, numBlocks: 64, blockSize: 4);
        var request = new EngineRequest("r", Prompt(1, 8), Tokens(50));
        loop.Scheduler.Add(request);
        loop.Step();
        Assert.True(loop.Scheduler.Finish("r", FinishReason.Stop));
        Assert.Equal(0, loop.Pool.UsageRatio);
        Assert.False(loop.Scheduler.HasUnfinishedRequests);
    }

    [Fact]
    public void Duplicate_ids_and_reused_requests_are_refused()
    {
        var loop = new EngineLoop(Options, numBlocks: 16, blockSize: 4);
        var request = new EngineRequest("r", Prompt(1, 4), Tokens(2));
        loop.Scheduler.Add(request);
        Assert.Throws<InvalidOperationException>(() => loop.Scheduler.Add(new EngineRequest("r", Prompt(1, 4), Tokens(2))));
        loop.RunToCompletion();
        Assert.Throws<InvalidOperationException>(() => loop.Scheduler.Add(request));
    }

    [Fact]
    public void A_request_that_cannot_fit_the_whole_pool_is_refused()
    {
        var loop = new EngineLoop(Options, numBlocks: 4, blockSize: 4);
        var error = Assert.Throws<InvalidRequestException>(() => loop.Scheduler.Add(new EngineRequest("big", Prompt(1, 10), Tokens(7))));
        Assert.Contains("17 tokens", error.Message);
        Assert.Contains("holds 16", error.Message);
        loop.Scheduler.Add(new EngineRequest("fits", Prompt(1, 10), Tokens(6)));
        Assert.Equal(1, loop.Scheduler.NumWaiting);
    }

    [Fact]
    public void The_most_recently_admitted_request_is_preempted_and_requeued_at_the_front()
    {
        // 4 blocks of 4. "old" and "new" each fill 2 blocks with 8 prompt tokens; the first decode needs a third block.
        var loop = new EngineLoop(Options with { EnablePrefixCaching = false }, numBlocks: 4, blockSize: 4);
        var old = new EngineRequest("old", Prompt(1, 8), Tokens(4));
        var young = new EngineRequest("new", Prompt(2, 8), Tokens(4));
        var late = new EngineRequest("late", Prompt(3, 4), Tokens(2));
        loop.Scheduler.Add(old);
        loop.Scheduler.Add(young);
        loop.Step();
        loop.Scheduler.Add(late);
        loop.Step();

        var step = loop.Steps[^1];
        Assert.Equal([young], step.Preempted);
        Assert.Equal(RequestState.Preempted, young.State);
        Assert.Equal(0, young.NumComputedTokens);
        Assert.Equal(1, young.NumPreemptions);
        Assert.Equal([old], step.Sequences.Select(s => s.Request)); // nobody admitted in a step that preempted
        loop.RunToCompletion();
        var resumed = loop.Steps.Skip(2).SelectMany(s => s.Sequences).First(s => s.Request == young);
        Assert.Equal(0, resumed.StartPosition);
        Assert.Equal(9, resumed.NumTokens); // prompt and the token it had generated, recomputed
        Assert.True(loop.Steps.FindIndex(s => s.Sequences.Any(q => q.Request == young && q.NumTokens == 9))
            <= loop.Steps.FindIndex(s => s.Sequences.Any(q => q.Request == late)));
        Assert.Equal(EngineLoop.RunAlone(young.PromptTokenIds, young.Sampling, Options), young.OutputTokenIds);
    }

    [Fact]
    public void Update_takes_the_runner_s_tokens_and_logprobs_by_request_and_refuses_a_missing_one()
    {
        var loop = new EngineLoop(Options, numBlocks: 64, blockSize: 4);
        var a = new EngineRequest("a", Prompt(1, 6), Tokens(5));
        var b = new EngineRequest("b", Prompt(2, 40), Tokens(5));
        loop.Scheduler.Add(a);
        loop.Scheduler.Add(b);

        // a's prompt samples; b's first chunk (26 of 40 tokens, the rest of the budget of 32) samples nothing.
        var step = loop.Scheduler.Schedule();
        Assert.Equal([true, false], step.Sequences.Select(s => s.SamplesToken));
        var logprobs = new SampledLogprobs(new TokenLogprob(9, -0.5f), 2, [new TokenLogprob(4, -0.1f)]);
        var progress = loop.Scheduler.Update(step, new ModelRunnerOutput(new Dictionary<string, SampledToken> { ["a"] = new(9, logprobs) }, []));

        var only = Assert.Single(progress);
        Assert.Equal((a, 9, (FinishReason?)null, logprobs), (only.Request, only.NewTokenId, only.FinishReason, only.Logprobs));
        Assert.Equal([9], a.OutputTokenIds);
        Assert.Empty(b.OutputTokenIds);
        Assert.Equal(26, b.NumComputedTokens);

        // Next step both sample; an output without b's token is a broken runner, not a silent gap.
        var next = loop.Scheduler.Schedule();
        Assert.All(next.Sequences, s => Assert.True(s.SamplesToken));
        var error = Assert.Throws<InvalidOperationException>(() =>
            loop.Scheduler.Update(next, new ModelRunnerOutput(new Dictionary<string, SampledToken> { ["a"] = new(3, null) }, [])));
        Assert.Contains("request b", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Finished_requests_ride_on_the_next_step_that_runs_so_the_runner_can_forget_them()
    {
        var loop = new EngineLoop(Options, numBlocks: 64, blockSize: 4);
        var a = new EngineRequest("a", Prompt(1, 4), Tokens(1));
        var b = new EngineRequest("b", Prompt(2, 4), Tokens(10));
        loop.Scheduler.Add(a);
        loop.Scheduler.Add(b);
        loop.Step();
        Assert.Equal(FinishReason.Length, a.FinishReason);
        loop.Step();
        Assert.Equal(["a"], loop.Steps[^1].FinishedRequestIds);

        loop.Scheduler.Cancel("b");
        loop.Step(); // frees b, runs nothing
        Assert.True(loop.Steps[^1].IsEmpty);
        Assert.Empty(loop.Steps[^1].FinishedRequestIds);
        loop.Scheduler.Add(new EngineRequest("c", Prompt(3, 4), Tokens(2)));
        loop.Step();
        Assert.Equal(["b"], loop.Steps[^1].FinishedRequestIds);
    }
}
