namespace DeepSeek.Runtime.Serving;

/// <summary>The waiting queue is full: HTTP 429 with Retry-After, gRPC RESOURCE_EXHAUSTED.</summary>
public sealed class OverloadedException(string message, TimeSpan retryAfter) : InferenceRejectedException(message)
{
    public TimeSpan RetryAfter { get; } = retryAfter;
}
