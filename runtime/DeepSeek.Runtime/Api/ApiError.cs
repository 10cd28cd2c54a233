using DeepSeek.Runtime.Serving;

namespace DeepSeek.Runtime.Api;

/// <summary>
/// A failure to report to the caller: which field (<see cref="Param"/>), what to change
/// (<see cref="Message"/>), and for overload how long to wait.
/// </summary>
public sealed record ApiError(ApiErrorKind Kind, string Message, string? Param = null, string? Code = null)
{
    public TimeSpan? RetryAfter { get; init; }

    public static ApiError Invalid(string? param, string message) => new(ApiErrorKind.InvalidRequest, message, param);

    public static ApiError From(InferenceRejectedException rejected) => rejected switch
    {
        OverloadedException overloaded => new ApiError(ApiErrorKind.Overloaded, overloaded.Message, Code: "overloaded") { RetryAfter = overloaded.RetryAfter },
        UnavailableException => new ApiError(ApiErrorKind.Unavailable, rejected.Message, Code: "unavailable"),
        InvalidRequestException invalid => Invalid(invalid.Param, invalid.Message),
        _ => new ApiError(ApiErrorKind.Internal, "The request was rejected for an unknown reason.", Code: "internal_error"),
    };
}
