using DeepSeek.Model.Checkpoints;

namespace DeepSeek.Model.Tests.Checkpoints;

public sealed class LoadProgressTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    private static LoadProgress At(int tensors, double gigabytes, double seconds) =>
        new(tensors, 5_678, (long)(gigabytes * 1e9), 31_400_000_000, TimeSpan.FromSeconds(seconds));

    [Fact]
    public void The_start_says_what_will_be_read()
    {
        Assert.Equal("Loading weights: 5,678 tensors, 31.4 GB", LoadProgressLog.LineFor(At(0, 0, 0), null, Interval));
    }

    [Fact]
    public void Lines_come_at_most_once_an_interval()
    {
        Assert.Null(LoadProgressLog.LineFor(At(100, 0.5, 1.9), TimeSpan.Zero, Interval));
        Assert.Equal("Loading weights: 1,234/5,678 tensors, 12.3/31.4 GB, 4.5 s",
            LoadProgressLog.LineFor(At(1_234, 12.3, 4.5), TimeSpan.FromSeconds(2.5), Interval));
        Assert.Null(LoadProgressLog.LineFor(At(1_300, 13, 6.4), TimeSpan.FromSeconds(4.5), Interval));
    }

    [Fact]
    public void The_end_always_gets_its_line_with_the_rate()
    {
        Assert.Equal("Weights loaded: 5,678 tensors, 31.40 GB in 10.0 s (3.14 GB/s)",
            LoadProgressLog.LineFor(At(5_678, 31.4, 10), TimeSpan.FromSeconds(9.9), Interval));
    }

    [Fact]
    public void A_load_with_no_time_passed_has_no_rate_to_divide_by()
    {
        var instant = new LoadProgress(1, 1, 10, 10, TimeSpan.Zero);
        Assert.Equal(0, instant.BytesPerSecond);
        Assert.Equal("Weights loaded: 1 tensors, 0.00 GB in 0.0 s (0.00 GB/s)", LoadProgressLog.LineFor(instant, null, Interval));
    }

    [Fact]
    public void The_log_writes_what_the_rule_says_and_remembers_its_last_line()
    {
        var lines = new List<string>();
        var log = new LoadProgressLog(lines.Add, Interval);
        foreach (var (tensors, seconds) in new[] { (0, 0.0), (10, 1.0), (20, 2.1), (30, 3.0), (40, 4.2), (5_678, 4.3) })
            log.Report(At(tensors, tensors / 200.0, seconds));
        Assert.Equal(4, lines.Count);
        Assert.StartsWith("Loading weights: 5,678 tensors", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("Loading weights: 20/5,678", lines[1], StringComparison.Ordinal);
        Assert.StartsWith("Loading weights: 40/5,678", lines[2], StringComparison.Ordinal);
        Assert.StartsWith("Weights loaded: 5,678 tensors", lines[3], StringComparison.Ordinal);
    }
}
