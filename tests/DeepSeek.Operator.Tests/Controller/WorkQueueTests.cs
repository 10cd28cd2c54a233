using DeepSeek.Operator.Controller;
using Microsoft.Extensions.Time.Testing;

namespace DeepSeek.Operator.Tests.Controller;

public sealed class WorkQueueTests
{
    [Fact]
    public async Task A_key_added_twice_is_processed_once_and_again_if_added_while_in_progress()
    {
        using var queue = new WorkQueue(new FakeTimeProvider());
        queue.Add("ns/a");
        queue.Add("ns/a");
        Assert.Equal(1, queue.Depth);
        var key = await queue.TakeAsync(CancellationToken.None);
        queue.Add("ns/a");
        Assert.Equal(0, queue.Depth); // not handed to a second worker while in progress
        queue.Done(key);
        Assert.Equal(1, queue.Depth);
    }

    [Fact]
    public void Failures_back_off_exponentially_per_key_up_to_the_cap_and_forget_resets()
    {
        var time = new FakeTimeProvider();
        using var queue = new WorkQueue(time, new WorkQueueOptions { BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(50) });
        var delays = Enumerable.Range(0, 5).Select(_ => queue.AddRateLimited("ns/a")).ToList();
        Assert.Equal([10, 20, 40, 50, 50], delays.Select(d => (int)d.TotalMilliseconds));
        Assert.Equal(5, queue.Failures("ns/a"));
        queue.Forget("ns/a");
        Assert.Equal(10, (int)queue.AddRateLimited("ns/a").TotalMilliseconds);
    }

    [Fact]
    public void Delayed_adds_arrive_when_the_time_comes()
    {
        var time = new FakeTimeProvider();
        using var queue = new WorkQueue(time);
        queue.AddAfter("ns/a", TimeSpan.FromSeconds(5));
        Assert.Equal(0, queue.Depth);
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(0, queue.Depth);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, queue.Depth);
    }

    [Fact]
    public void The_bucket_bounds_retries_of_many_keys()
    {
        var time = new FakeTimeProvider();
        using var queue = new WorkQueue(time, new WorkQueueOptions { BaseDelay = TimeSpan.FromMilliseconds(1), RetriesPerSecond = 10, Burst = 2 });
        var delays = Enumerable.Range(0, 4).Select(i => queue.AddRateLimited($"ns/{i}")).ToList();
        Assert.Equal(TimeSpan.FromMilliseconds(1), delays[0]);
        Assert.Equal(TimeSpan.FromMilliseconds(1), delays[1]);
        Assert.Equal(100, (int)Math.Round(delays[2].TotalMilliseconds));
        Assert.Equal(200, (int)Math.Round(delays[3].TotalMilliseconds));
    }
}
