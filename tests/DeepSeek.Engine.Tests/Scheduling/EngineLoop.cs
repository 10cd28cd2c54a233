using DeepSeek.Engine.KvCache;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Scheduling;

namespace DeepSeek.Engine.Tests.Scheduling;

/// <summary>Schedule → runner (fake model) → update, as the engine core runs it, with the step invariants checked.</summary>
internal sealed class EngineLoop
{
    /// <summary>A scheduler over a pool of <paramref name="numBlocks"/> × <paramref name="blockSize"/>; the options' context is 256 when unset, end-of-sequence id 0 unless given.</summary>
    public EngineLoop(EngineOptions options, int numBlocks, int blockSize, int vocabularySize = 50, IReadOnlyList<int>? eosTokenIds = null)
    {
        Pool = new KvBlockPool(numBlocks, blockSize);
        Scheduler = new Scheduler(options, options.MaxModelLength ?? 256, eosTokenIds ?? [0], Pool);
        Model = new FakeKvModel(numBlocks, blockSize, vocabularySize);
        VocabularySize = vocabularySize;
    }

    public KvBlockPool Pool { get; }

    public Scheduler Scheduler { get; }

    public FakeKvModel Model { get; }

    public int VocabularySize { get; }

    public List<SchedulerStep> Steps { get; } = [];

    public int Preemptions { get; private set; }

    public Action<SchedulerStep>? OnScheduled { get; init; }

    public Action<RequestProgress>? OnProgress { get; init; }

    public IReadOnlyList<RequestProgress> Step()
    {
        var step = Scheduler.Schedule();
        Steps.Add(step);
        Preemptions += step.Preempted.Count;
        Assert.True(step.TotalTokens <= Scheduler.Options.MaxBatchTokens, $"step of {step.TotalTokens} tokens");
        Assert.True(Scheduler.NumRunning <= Scheduler.Options.MaxRunningRequests);
        Assert.Equal(step.Sequences.Count, step.Sequences.Select(s => s.Request).Distinct().Count());
        OnScheduled?.Invoke(step);
        var progress = Scheduler.Update(step, Model.Execute(step));
        foreach (var p in progress) OnProgress?.Invoke(p);
        return progress;
    }

    public void RunToCompletion(int maxSteps = 10_000)
    {
        for (var i = 0; i < maxSteps && Scheduler.HasUnfinishedRequests; i++) Step();
        Assert.False(Scheduler.HasUnfinishedRequests, $"requests left after {maxSteps} steps");
    }

    /// <summary>The request's output when it runs alone in a roomy pool: the reference for batching invariance.</summary>
    public static IReadOnlyList<int> RunAlone(IReadOnlyList<int> prompt, SamplingParameters sampling, EngineOptions options, int vocabularySize = 50, IReadOnlyList<int>? eosTokenIds = null)
    {
        var loop = new EngineLoop(options with { EnablePrefixCaching = false, MaxRunningRequests = 1 }, numBlocks: 256, blockSize: 4, vocabularySize, eosTokenIds);
        var request = new EngineRequest("alone", prompt, sampling);
        loop.Scheduler.Add(request);
        loop.RunToCompletion();
        return request.OutputTokenIds;
    }
}
