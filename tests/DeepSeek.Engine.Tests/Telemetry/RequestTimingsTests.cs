using System.Diagnostics.Metrics;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Model.Experts;
using Microsoft.Extensions.Time.Testing;

namespace DeepSeek.Engine.Tests.Telemetry;

[Collection(MeterCollection.Name)]
public sealed class RequestTimingsTests
{
    [Fact]
    public void Marks_measure_queue_time_first_token_inter_token_and_end_to_end()
    {
        var clock = new FakeTimeProvider();
        var timings = new RequestTimings(clock);

        clock.Advance(TimeSpan.FromMilliseconds(40));
        Assert.Equal(TimeSpan.FromMilliseconds(40), timings.MarkScheduled());
        clock.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Null(timings.MarkScheduled()); // a recompute after preemption is not a second queue wait

        clock.Advance(TimeSpan.FromMilliseconds(50));
        Assert.Equal((TimeSpan.FromMilliseconds(100), (TimeSpan?)null), timings.MarkToken());
        clock.Advance(TimeSpan.FromMilliseconds(7));
        Assert.Equal(((TimeSpan?)null, TimeSpan.FromMilliseconds(7)), timings.MarkToken());
        clock.Advance(TimeSpan.FromMilliseconds(3));
        Assert.Equal(TimeSpan.FromMilliseconds(110), timings.MarkFinished());
    }

    [Fact]
    public void Expert_imbalance_is_max_over_mean()
    {
        Assert.Equal(1.0, ExpertLoad.ImbalanceRatio([5, 5, 5, 5]));
        Assert.Equal(2.0, ExpertLoad.ImbalanceRatio([8, 0, 4, 4]));
        Assert.Equal(0.0, ExpertLoad.ImbalanceRatio([0, 0]));
        Assert.Equal(0.0, ExpertLoad.ImbalanceRatio([]));
    }

    [Fact]
    public void Measurements_carry_the_model_tag_and_expert_labels()
    {
        using var metrics = new EngineMetrics("timings-test-model");
        var seen = new List<(string Instrument, long Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == EngineMetrics.MeterName) l.EnableMeasurementEvents(instrument);
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var dictionary = tags.ToArray().ToDictionary(t => t.Key, t => t.Value);
            if (Equals(dictionary.GetValueOrDefault("model"), "timings-test-model")) seen.Add((instrument.Name, value, dictionary));
        });
        listener.Start();

        metrics.RecordExpertTokens(2, [3, 0, 9]);

        Assert.Equal(2, seen.Count);
        Assert.All(seen, s => Assert.Equal("deepseek_expert_tokens", s.Instrument));
        Assert.Equal([("0", 3L), ("2", 9L)], seen.Select(s => ((string)s.Tags["expert"]!, s.Value)));
        Assert.All(seen, s => Assert.Equal("2", s.Tags["layer"]));
    }
}
