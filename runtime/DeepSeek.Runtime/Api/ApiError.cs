using System.Globalization;
using DeepSeek.Engine.Admission;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Runtime.Serving;
using Microsoft.AspNetCore.Http;
using GrpcStatusCode = Grpc.Core.StatusCode;

namespace DeepSeek.Runtime.Api;

/// <summary>Why a request failed, independent of the protocol; <see cref="ApiErrors"/> gives each its HTTP status and gRPC code.</summary>
public enum ApiErrorKind
{
    InvalidRequest,
    Unauthenticated,
    NotFound,
    RequestTimeout,
    PayloadTooLarge,
    UnsupportedMediaType,
    Overloaded,
    Unavailable,
    Internal,
}

/// <summary>
/// A failure to report to the caller: which field (<see cref="Param"/>), what to change
/// (<see cref="Message"/>), a stable <see cref="Code"/>, and for overload how long to wait.
/// </summary>
public sealed record ApiError(ApiErrorKind Kind, string Message, string? Param = null, string? Code = null)
{
    public TimeSpan? RetryAfter { get; init; }

    public static ApiError Invalid(string? param, string message, string code = "invalid_value") => new(ApiErrorKind.InvalidRequest, message, param, code);
}

/// <summary>Carries an <see cref="ApiError"/> out of validation code to the face (HTTP or gRPC) that reports it.</summary>
public sealed class ApiFailure(ApiError error) : Exception(error.Message)
{
    public ApiError Error { get; } = error;
}

/// <summary>
/// The one table from what went wrong (an engine exception, a failed request's last event, the
/// server's readiness) to what the client is told, and from there to the HTTP status, OpenAI error
/// type and gRPC status code. Both faces use it, so they always agree.
/// </summary>
public static partial class ApiErrors
{
    /// <summary>What a refused client is told to wait: a few decode steps free queue slots.</summary>
    public static readonly TimeSpan OverloadRetryAfter = TimeSpan.FromSeconds(2);

    /// <summary>The error for an exception a request handler saw; null for one that is a server bug (500, logged by the caller).</summary>
    public static ApiError? From(Exception exception) => exception switch
    {
        ApiFailure failure => failure.Error,
        InvalidRequestException invalid => ApiError.Invalid(string.IsNullOrEmpty(invalid.Param) ? null : invalid.Param, invalid.Message, invalid.Code),
        EngineOverloadedException overloaded => new ApiError(ApiErrorKind.Overloaded, overloaded.Message, Code: "overloaded") { RetryAfter = OverloadRetryAfter },
        EngineDrainingException draining => new ApiError(ApiErrorKind.Unavailable, draining.Message, Code: "draining"),
        _ => null,
    };

    /// <summary>The error of a request that ended with <see cref="FinishReason.Error"/>: the engine's own message, code and field, unchanged.</summary>
    public static ApiError FromFailedEvent(TokenEvent last) => last.ErrorParam is { Length: > 0 } param
        ? ApiError.Invalid(param, last.ErrorMessage ?? "The request is invalid.", last.FailureReason is null or FailureReasons.Invalid ? "invalid_value" : last.FailureReason)
        : last.FailureReason == FailureReasons.ExpertRankUnavailable
            ? new ApiError(ApiErrorKind.Unavailable, last.ErrorMessage ?? "A rank of the expert-parallel group is unavailable.", Code: last.FailureReason)
        : new ApiError(ApiErrorKind.Internal,
            last.ErrorMessage ?? "The engine failed while running this request; the server log says why.",
            Code: last.FailureReason ?? "engine_error");

    /// <exception cref="ApiFailure">503 while the model loads or the replica drains.</exception>
    public static void CheckReady(Readiness readiness)
    {
        switch (readiness.State)
        {
            case ReadinessState.Loading:
                throw new ApiFailure(new ApiError(ApiErrorKind.Unavailable, "The model is still loading; retry when GET /ready answers 200.", Code: "loading")
                    { RetryAfter = TimeSpan.FromSeconds(5) });
            case ReadinessState.Draining:
                throw new ApiFailure(new ApiError(ApiErrorKind.Unavailable, "This replica is draining (shutting down); send the request to another replica.", Code: "draining"));
            case ReadinessState.WaitingForRanks:
                throw new ApiFailure(new ApiError(ApiErrorKind.Unavailable, $"This replica cannot compute every expert: {readiness.MissingRanks?.TrimEnd('.')}. Retry later or send the request to another replica.", Code: "expert_rank_unavailable")
                    { RetryAfter = TimeSpan.FromSeconds(5) });
            case ReadinessState.Failed:
                throw new ApiFailure(new ApiError(ApiErrorKind.Unavailable, "This replica failed and is stopping; send the request to another replica.", Code: "unavailable"));
        }
    }

    public static int HttpStatus(ApiErrorKind kind) => kind switch
    {
        ApiErrorKind.InvalidRequest => StatusCodes.Status400BadRequest,
        ApiErrorKind.Unauthenticated => StatusCodes.Status401Unauthorized,
        ApiErrorKind.NotFound => StatusCodes.Status404NotFound,
        ApiErrorKind.RequestTimeout => StatusCodes.Status408RequestTimeout,
        ApiErrorKind.PayloadTooLarge => StatusCodes.Status413PayloadTooLarge,
        ApiErrorKind.UnsupportedMediaType => StatusCodes.Status415UnsupportedMediaType,
        ApiErrorKind.Overloaded => StatusCodes.Status429TooManyRequests,
        ApiErrorKind.Unavailable => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    /// <summary>OpenAI's <c>error.type</c>.</summary>
    public static string OpenAiType(ApiErrorKind kind) => kind switch
    {
        ApiErrorKind.InvalidRequest or ApiErrorKind.NotFound or ApiErrorKind.PayloadTooLarge
            or ApiErrorKind.UnsupportedMediaType or ApiErrorKind.RequestTimeout => "invalid_request_error",
        ApiErrorKind.Unauthenticated => "authentication_error",
        ApiErrorKind.Overloaded => "rate_limit_error",
        ApiErrorKind.Unavailable => "service_unavailable_error",
        _ => "server_error",
    };

    public static GrpcStatusCode GrpcCode(ApiErrorKind kind) => kind switch
    {
        ApiErrorKind.InvalidRequest or ApiErrorKind.PayloadTooLarge or ApiErrorKind.UnsupportedMediaType => GrpcStatusCode.InvalidArgument,
        ApiErrorKind.Unauthenticated => GrpcStatusCode.Unauthenticated,
        ApiErrorKind.NotFound => GrpcStatusCode.NotFound,
        ApiErrorKind.RequestTimeout => GrpcStatusCode.DeadlineExceeded,
        ApiErrorKind.Overloaded => GrpcStatusCode.ResourceExhausted,
        ApiErrorKind.Unavailable => GrpcStatusCode.Unavailable,
        _ => GrpcStatusCode.Internal,
    };

    /// <summary>Whole seconds, at least one, as <c>Retry-After</c> wants them.</summary>
    public static string RetryAfterSeconds(TimeSpan retryAfter) =>
        Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    /// <summary>One line per failed request: the engine's reason reaches the log as well as the client.</summary>
    [LoggerMessage(Level = LogLevel.Warning, Message = "Request {RequestId} failed: {Code}: {Message}")]
    public static partial void LogRequestFailed(ILogger logger, string requestId, string? code, string message);
}
