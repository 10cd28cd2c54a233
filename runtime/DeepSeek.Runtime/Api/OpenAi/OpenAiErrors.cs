using System.Globalization;
using DeepSeek.Runtime.Api.OpenAi.Contracts;

namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary>Writes an <see cref="ApiError"/> as OpenAI does: status, <c>Retry-After</c> when overloaded, and the error body.</summary>
public static class OpenAiErrors
{
    public static int StatusCode(ApiErrorKind kind) => kind switch
    {
        ApiErrorKind.InvalidRequest => StatusCodes.Status400BadRequest,
        ApiErrorKind.Unauthenticated => StatusCodes.Status401Unauthorized,
        ApiErrorKind.NotFound => StatusCodes.Status404NotFound,
        ApiErrorKind.PayloadTooLarge => StatusCodes.Status413PayloadTooLarge,
        ApiErrorKind.Overloaded => StatusCodes.Status429TooManyRequests,
        ApiErrorKind.Unavailable => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    public static string ErrorType(ApiErrorKind kind) => kind switch
    {
        ApiErrorKind.InvalidRequest or ApiErrorKind.NotFound or ApiErrorKind.PayloadTooLarge => "invalid_request_error",
        ApiErrorKind.Unauthenticated => "authentication_error",
        ApiErrorKind.Overloaded => "rate_limit_error",
        ApiErrorKind.Unavailable => "service_unavailable_error",
        _ => "server_error",
    };

    internal static ErrorResponse Body(ApiError error) => new(new ErrorResponse.Body(error.Message, ErrorType(error.Kind), error.Param, error.Code));

    public static async Task WriteAsync(HttpContext context, ApiError error)
    {
        var response = context.Response;
        if (response.HasStarted) return;
        response.StatusCode = StatusCode(error.Kind);
        if (error.RetryAfter is { } retryAfter)
            response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        if (error.Kind == ApiErrorKind.Unauthenticated) response.Headers.WWWAuthenticate = "Bearer";
        await response.WriteAsJsonAsync(Body(error), OpenAiJsonContext.Default.ErrorResponse, contentType: "application/json", context.RequestAborted);
    }
}
