namespace DeepSeek.Engine.Admission;

/// <summary>The waiting queue is full (HTTP 429 / gRPC RESOURCE_EXHAUSTED). Retryable: the same request may succeed later.</summary>
public sealed class EngineOverloadedException : Exception
{
    public EngineOverloadedException(int maxQueuedRequests)
        : base($"The server is at capacity: {maxQueuedRequests} requests are already waiting (--max-queued-requests). Retry later or send fewer concurrent requests.")
    {
        MaxQueuedRequests = maxQueuedRequests;
    }

    public EngineOverloadedException() : this(0) { }

    public EngineOverloadedException(string message) : base(message) { }

    public EngineOverloadedException(string message, Exception innerException) : base(message, innerException) { }

    public int MaxQueuedRequests { get; }

    public static bool IsRetryable => true;
}
