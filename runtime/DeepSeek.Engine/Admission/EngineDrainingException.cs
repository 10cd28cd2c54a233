namespace DeepSeek.Engine.Admission;

/// <summary>The engine is draining before shutdown and takes no new work (HTTP 503 / gRPC UNAVAILABLE). Retry on another replica.</summary>
public sealed class EngineDrainingException : Exception
{
    public EngineDrainingException()
        : base("The server is shutting down and accepts no new requests; retry on another replica.") { }

    public EngineDrainingException(string message) : base(message) { }

    public EngineDrainingException(string message, Exception innerException) : base(message, innerException) { }
}
