namespace DeepSeek.Operator.Controller;

/// <summary>Backoff of the work queue (client-go's defaults: 5 ms doubling to 1000 s; 10 retries/s, burst 100).</summary>
public sealed record WorkQueueOptions
{
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(5);
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(300);
    public double RetriesPerSecond { get; init; } = 10;
    public int Burst { get; init; } = 100;
}
