namespace DeepSeek.Runtime.Serving;

/// <summary>Loading or draining: HTTP 503, gRPC UNAVAILABLE.</summary>
public sealed class UnavailableException(string message) : InferenceRejectedException(message);
