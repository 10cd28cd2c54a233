using DeepSeek.Engine.Admission;
using DeepSeek.Engine.Execution;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Engine.Tests.Telemetry;
using Microsoft.Extensions.Logging;
using static DeepSeek.Engine.Tests.Core.FaultInjection;

namespace DeepSeek.Engine.Tests.Core;

/// <summary>
/// Fault injection through the runner: a step that throws fails only its requests, the failure is
/// logged with its cause and counted by reason, and the engine serves on; a fault it cannot recover
/// from ends every request with an error and leaves the engine in <see cref="EngineState.Failed"/>.
/// </summary>
[Collection(MeterCollection.Name)]
public sealed class EngineFailureTests
{
    private const int Poison = 77;

    /// <summary>Throws, as a CUDA out-of-memory error would, in every step that computes a prompt starting with <see cref="Poison"/>.</summary>
    private static Exception? PoisonedStep(DeepSeek.Engine.Scheduling.SchedulerStep step) =>
        step.Sequences.Any(s => s.Request.PromptTokenIds[0] == Poison)
            ? new InvalidOperationException("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
            : null;

    [Fact]
    public async Task A_failed_step_fails_its_requests_with_a_clear_error_and_the_others_finish()
    {
        // One running request at a time: the poisoned one runs alone, the others wait for their turn.
        using var harness = await StartAsync("fault-step", new EngineOptions { MaxRunningRequests = 1 }, PoisonedStep);
        var engine = harness.Engine;
        int[] healthy = [5, 6, 7, 8, 9], other = [11, 12, 13];

        var poisoned = engine.Submit([Poison, 1, 2], Greedy(8));
        var first = engine.Submit(healthy, Greedy(6));
        var second = engine.Submit(other, Greedy(6));
        var failed = await CollectAsync(poisoned);
        var results = await Task.WhenAll(CollectAsync(first), CollectAsync(second));

        var last = Assert.Single(failed);
        Assert.Equal(FinishReason.Error, last.FinishReason);
        Assert.Equal(FailureReasons.ModelStep, last.FailureReason);
        Assert.Contains("The model step failed", last.ErrorMessage, StringComparison.Ordinal);
        Assert.Contains("CUDA out of memory", last.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(Reference(healthy, 6), Tokens(results[0]));
        Assert.Equal(Reference(other, 6), Tokens(results[1]));
        Assert.All(results, events => Assert.Equal(FinishReason.Length, events[^1].FinishReason));

        Assert.Equal(EngineState.Serving, engine.State);
        Assert.Null(engine.Failure);
        Assert.Equal(1, harness.FailureCount(FailureReasons.ModelStep));
        Assert.Equal(0, harness.FailureCount(FailureReasons.EngineFailed));
        Assert.Contains(harness.Log.Records, r => r.Level == LogLevel.Error && r.Exception?.Message.Contains("injected", StringComparison.Ordinal) == true);
        Assert.True(await EventuallyAsync(() => engine.GetLoad() is { KvCacheUsage: 0, Running: 0, Waiting: 0 }));

        // Still serving: a request after the failure completes.
        var after = await CollectAsync(engine.Submit(healthy, Greedy(3)));
        Assert.Equal(Reference(healthy, 3), Tokens(after));
    }

    [Fact]
    public async Task A_request_whose_output_cannot_be_produced_ends_alone_and_its_step_mates_finish()
    {
        // The decoder throws on id 250, as a tokenizer did on ids of the padded embedding table.
        using var harness = await StartAsync("fault-output", new EngineOptions(),
            decode: ids => ids.Contains(250) ? throw new KeyNotFoundException("Token id 250 is past the tokenizer vocabulary of 240.") : string.Concat(ids.Select(id => $"<{id}>")));
        var engine = harness.Engine;
        int[] healthy = [5, 6, 7, 8, 9];

        var handles = engine.SubmitBatch([[250, 1, 2], healthy], Greedy(6));
        var broken = await CollectAsync(handles[0]);
        var fine = await CollectAsync(handles[1]);

        Assert.Equal(FinishReason.Error, broken[^1].FinishReason);
        Assert.Equal(FailureReasons.Output, broken[^1].FailureReason);
        Assert.Contains("250 is past the tokenizer vocabulary", broken[^1].ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(Reference(healthy, 6), Tokens(fine));
        Assert.Equal(string.Concat(Reference(healthy, 6).Select(id => $"<{id}>")), string.Concat(fine.Select(e => e.TextDelta)));
        Assert.Equal(1, harness.FailureCount(FailureReasons.Output));
        Assert.Equal(EngineState.Serving, engine.State);
        Assert.True(await EventuallyAsync(() => engine.GetLoad() is { KvCacheUsage: 0, Running: 0 }));
    }

    [Fact]
    public async Task Steps_failing_in_a_row_fail_the_engine_and_end_every_request()
    {
        using var harness = await StartAsync("fault-repeated", new EngineOptions { MaxRunningRequests = 1, MaxConsecutiveStepFailures = 2 },
            _ => new InvalidOperationException("CUDA error: an unknown error (injected)"));
        var engine = harness.Engine;

        var handles = Enumerable.Range(0, 4).Select(i => engine.Submit([10 + i, 2, 3], Greedy(4))).ToList();
        var results = await Task.WhenAll(handles.Select(CollectAsync));
        await engine.Stopped.WaitAsync(Patience);

        Assert.All(results, events => Assert.Equal(FinishReason.Error, events[^1].FinishReason));
        Assert.Equal([FailureReasons.ModelStep, FailureReasons.ModelStep, FailureReasons.EngineFailed, FailureReasons.EngineFailed],
            results.Select(events => events[^1].FailureReason));
        Assert.Contains("The engine failed", results[3][^1].ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(EngineState.Failed, engine.State);
        var failure = Assert.IsType<UnrecoverableStepException>(engine.Failure);
        Assert.Contains("2 model steps failed in a row", failure.Message, StringComparison.Ordinal);
        Assert.Equal(2, harness.FailureCount(FailureReasons.ModelStep));
        Assert.Equal(2, harness.FailureCount(FailureReasons.EngineFailed));
        Assert.Contains(harness.Log.Records, r => r.Level == LogLevel.Critical && r.Exception == engine.Failure);

        var refused = Assert.Throws<EngineDrainingException>(() => engine.Submit([1, 2], Greedy(2)));
        Assert.Contains("failed", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_fault_the_runner_marks_unrecoverable_fails_the_engine_at_once()
    {
        using var harness = await StartAsync("fault-fatal", new EngineOptions { MaxConsecutiveStepFailures = 10 },
            _ => new UnrecoverableStepException("The device cannot continue: CUDA error: an illegal memory access was encountered (injected)"));
        var engine = harness.Engine;

        var handles = engine.SubmitBatch([[1, 2, 3], [4, 5, 6]], Greedy(4));
        var results = await Task.WhenAll(handles.Select(CollectAsync));
        await engine.Stopped.WaitAsync(Patience);

        Assert.All(results, events =>
        {
            Assert.Equal(FinishReason.Error, events[^1].FinishReason);
            Assert.Equal(FailureReasons.EngineFailed, events[^1].FailureReason);
            Assert.Contains("illegal memory access", events[^1].ErrorMessage, StringComparison.Ordinal);
        });
        Assert.Equal(EngineState.Failed, engine.State);
        Assert.IsType<UnrecoverableStepException>(engine.Failure);
        Assert.Equal(2, harness.FailureCount(FailureReasons.EngineFailed));
        Assert.Equal(0, harness.Runner.Steps);
    }
}
