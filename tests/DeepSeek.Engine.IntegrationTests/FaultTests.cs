using DeepSeek.Engine.Execution;
using DeepSeek.Engine.IntegrationTests.Support;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Scheduling;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Model.Configuration;
using static DeepSeek.Engine.IntegrationTests.Support.EngineHarness;

namespace DeepSeek.Engine.IntegrationTests;

/// <summary>The real runner and model with a fault injected into chosen steps: the failed request ends with an error, the others get their reference tokens.</summary>
[Collection(EngineCollection.Name)]
public sealed class FaultTests
{
    /// <summary>The model runner, except that a step containing a request <paramref name="fails"/> picks throws first.</summary>
    private sealed class FaultyRunner(IModelRunner inner, Func<EngineRequest, bool> fails) : IModelRunner
    {
        public DeepSeekConfig Config => inner.Config;

        public int NumBlocks => inner.NumBlocks;

        public ModelRunnerOutput Execute(SchedulerStep step) =>
            step.Sequences.Any(s => fails(s.Request))
                ? throw new InvalidOperationException("CUDA out of memory. Tried to allocate 8.00 GiB (injected)")
                : inner.Execute(step);

        public float[] Embed(IReadOnlyList<int> tokenIds) => inner.Embed(tokenIds);

        public void WarmUp(int blockId) => inner.WarmUp(blockId);

        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public async Task A_failing_step_ends_its_request_with_the_cause_and_the_engine_serves_the_rest()
    {
        var prompts = ReferenceCheckpoints.Prompts(ReferenceCheckpoints.V3Tiny);
        var options = new EngineOptions { ServedModelName = "fault-real", KvCacheBlocks = 64, MaxRunningRequests = 1 };
        var poisoned = prompts[0].InputIds;
        await using var engine = await InferenceEngine.StartAsync(options,
            () => new FaultyRunner(ModelRunner.Load(options, () => LoadModel(ReferenceCheckpoints.V3Tiny)), r => r.PromptTokenIds.SequenceEqual(poisoned)),
            Decoder(ReferenceCheckpoints.V3Tiny), new EngineMetrics(options.ServedModelName), null, null, null);

        var failed = engine.Submit(poisoned, Greedy(8));
        var healthy = prompts.Skip(1).Select(p => engine.Submit(p.InputIds, Greedy(p.ReliableGreedy.Length))).ToList();
        var error = Assert.Single(await CollectAsync(failed));
        var results = await Task.WhenAll(healthy.Select(CollectAsync));

        Assert.Equal((FinishReason.Error, FailureReasons.ModelStep), (error.FinishReason!.Value, error.FailureReason));
        Assert.Contains("CUDA out of memory", error.ErrorMessage, StringComparison.Ordinal);
        for (var i = 0; i < healthy.Count; i++) Assert.Equal(prompts[i + 1].ReliableGreedy, Tokens(results[i]));
        Assert.Equal(EngineState.Serving, engine.State);
        Assert.True(await EventuallyAsync(() => engine.GetLoad() is { KvCacheUsage: 0, Running: 0, Waiting: 0 }));
    }
}
