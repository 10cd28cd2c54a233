using DeepSeek.Engine.Admission;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Scheduling;
using DeepSeek.Engine.Tests.Scheduling;

namespace DeepSeek.Engine.Tests.Admission;

public sealed class AdmissionControlTests
{
    private static SamplingParameters Tokens(int max) => SamplingParameters.Greedy with { MaxTokens = max, IgnoreEos = true };

    [Fact]
    public void A_flood_past_the_queue_bound_is_refused_and_everything_admitted_completes()
    {
        var options = new EngineOptions { MaxBatchTokens = 16, MaxRunningRequests = 2, MaxModelLength = 64 };
        var admission = new AdmissionControl(new EngineOptions { MaxQueuedRequests = 5 });
        var tickets = new Dictionary<string, AdmissionTicket>();
        var loop = new EngineLoop(options, numBlocks: 32, blockSize: 4)
        {
            OnScheduled = step => { foreach (var s in step.Sequences) tickets[s.Request.Id].MarkRunning(); },
            OnProgress = p => { if (p.FinishReason is not null) tickets[p.Request.Id].Dispose(); },
        };

        var admitted = new List<EngineRequest>();
        var refused = 0;
        for (var i = 0; i < 40; i++)
        {
            var request = new EngineRequest($"r{i}", [1 + i, 2, 3], Tokens(4));
            try
            {
                tickets[request.Id] = admission.Admit();
                loop.Scheduler.Add(request);
                admitted.Add(request);
            }
            catch (EngineOverloadedException error)
            {
                refused++;
                Assert.Contains("--max-queued-requests", error.Message);
                Assert.True(EngineOverloadedException.IsRetryable);
            }
            // Every fourth arrival the engine takes a step, so the queue drains a little.
            if (i % 4 == 3) loop.Step();
        }

        Assert.True(refused > 0);
        Assert.True(admitted.Count > 5);
        loop.RunToCompletion();
        Assert.All(admitted, r => Assert.Equal(4, r.OutputTokenIds.Count));
        Assert.All(admitted, r => Assert.Equal(EngineLoop.RunAlone(r.PromptTokenIds, r.Sampling, options), r.OutputTokenIds));
        Assert.Equal(0, admission.QueuedCount);
        Assert.Equal(0, admission.InFlightCount);
        Assert.Equal(40, admitted.Count + refused);
    }

    [Fact]
    public void Queue_bound_counts_requests_not_yet_running()
    {
        var admission = new AdmissionControl(new EngineOptions { MaxQueuedRequests = 2 });
        var first = admission.Admit();
        var second = admission.Admit();
        Assert.Throws<EngineOverloadedException>(() => admission.Admit());

        first.MarkRunning();
        first.MarkRunning();
        Assert.Equal(1, admission.QueuedCount);
        var third = admission.Admit();
        Assert.Equal(3, admission.InFlightCount);

        second.Dispose(); // finished (cancelled) while still waiting
        second.Dispose();
        Assert.Equal(1, admission.QueuedCount);
        first.Dispose();
        third.Dispose();
        Assert.Equal(0, admission.QueuedCount);
        Assert.Equal(0, admission.InFlightCount);
    }

    [Fact]
    public async Task Drain_refuses_new_work_and_reports_idle_when_in_flight_work_is_done()
    {
        var admission = new AdmissionControl(new EngineOptions { MaxQueuedRequests = 4 });
        var inFlight = admission.Admit();
        inFlight.MarkRunning();

        admission.BeginDrain();
        Assert.True(admission.IsDraining);
        Assert.Throws<EngineDrainingException>(() => admission.Admit());
        Assert.False(admission.WhenDrained.IsCompleted);

        inFlight.Dispose();
        await admission.WhenDrained.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, admission.InFlightCount);
    }

    [Fact]
    public void Draining_an_idle_engine_is_done_at_once()
    {
        var admission = new AdmissionControl(new EngineOptions { MaxQueuedRequests = 4 });
        admission.BeginDrain();
        Assert.True(admission.WhenDrained.IsCompletedSuccessfully);
    }
}
