namespace DeepSeek.Engine.Scheduling;

/// <summary>Limits of one scheduling step and what ends a sequence.</summary>
public sealed record SchedulerOptions
{
    /// <summary>Tokens (prefill and decode together) in one forward pass: <c>--max-batch-tokens</c>.</summary>
    public int MaxBatchTokens { get; init; } = 2048;

    /// <summary>Requests holding KV blocks at once: <c>--max-running-requests</c>.</summary>
    public int MaxRunningRequests { get; init; } = 64;

    /// <summary>Context length of the model: prompt plus output never exceed it.</summary>
    public int MaxModelLength { get; init; } = 4096;

    public bool EnablePrefixCaching { get; init; } = true;

    /// <summary>The model's end-of-sequence ids (from generation_config.json).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    public void Validate()
    {
        if (MaxBatchTokens < 1) throw new ArgumentException($"--max-batch-tokens must be at least 1, got {MaxBatchTokens}.");
        if (MaxRunningRequests < 1) throw new ArgumentException($"--max-running-requests must be at least 1, got {MaxRunningRequests}.");
        if (MaxModelLength < 2) throw new ArgumentException($"The context length must be at least 2 tokens, got {MaxModelLength}.");
    }
}
