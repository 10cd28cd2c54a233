namespace DeepSeek.Runtime.Api;

/// <summary>Why a request failed, independent of the protocol; each face maps it to its own status.</summary>
public enum ApiErrorKind
{
    InvalidRequest,
    Unauthenticated,
    NotFound,
    PayloadTooLarge,
    Overloaded,
    Unavailable,
    Internal,
}
