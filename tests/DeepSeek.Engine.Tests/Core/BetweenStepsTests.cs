using DeepSeek.Engine.Tests.Telemetry;
using static DeepSeek.Engine.Tests.Core.FaultInjection;

namespace DeepSeek.Engine.Tests.Core;

/// <summary>
/// Work on the engine thread between two steps (what an expert-parallel leader switches placements
/// with): it runs there while requests are in flight, its result or its exception is the caller's,
/// and the requests around it finish as if it had not happened.
/// </summary>
[Collection(MeterCollection.Name)]
public sealed class BetweenStepsTests
{
    [Fact]
    public async Task Work_between_steps_runs_on_the_engine_thread_while_requests_go_on()
    {
        using var harness = await StartAsync("between-steps", new EngineOptions());
        var engine = harness.Engine;
        int[] prompt = [5, 6, 7, 8, 9];

        var running = engine.Submit(prompt, Greedy(24));
        var thread = await engine.RunBetweenStepsAsync(() => Thread.CurrentThread.Name);
        var failing = engine.RunBetweenStepsAsync<int>(() => throw new InvalidOperationException("staging failed (injected)"));
        var events = await CollectAsync(running);

        Assert.Equal("deepseek-engine", thread);
        Assert.Equal("staging failed (injected)", (await Assert.ThrowsAsync<InvalidOperationException>(() => failing)).Message);
        Assert.Equal(Reference(prompt, 24), Tokens(events));
        Assert.Equal(EngineState.Serving, engine.State);
        Assert.Equal(Reference(prompt, 3), Tokens(await CollectAsync(engine.Submit(prompt, Greedy(3)))));
    }

    [Fact]
    public async Task A_stopped_engine_refuses_work_between_steps()
    {
        using var harness = await StartAsync("between-steps-stopped", new EngineOptions());
        await harness.Engine.StopAsync();

        Assert.Throws<InvalidOperationException>(() => { _ = harness.Engine.RunBetweenStepsAsync(() => 1); });
    }
}
