namespace DeepSeek.Engine;

/// <summary>Where the engine is in its life; what a host's readiness and exit code follow.</summary>
public enum EngineState
{
    /// <summary>Loading the model and sizing the KV cache.</summary>
    Starting,

    /// <summary>Accepting and serving requests.</summary>
    Serving,

    /// <summary>Refusing new requests, finishing those in flight.</summary>
    Draining,

    /// <summary>Stopped on request; every request has ended.</summary>
    Stopped,

    /// <summary>
    /// Stopped by a fault it cannot recover from (see <see cref="InferenceEngine.Failure"/>); every
    /// request has ended with an error. The host should turn not-ready and exit non-zero.
    /// </summary>
    Failed,
}
