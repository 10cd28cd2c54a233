using DeepSeek.Runtime.Api.OpenAi.Contracts;

namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary>Writes an <see cref="ApiError"/> as OpenAI does: the status from <see cref="ApiErrors"/>, <c>Retry-After</c> when overloaded, and the error body.</summary>
public static class OpenAiErrors
{
    internal static ErrorResponse Body(ApiError error) => new(new ErrorResponse.Body(error.Message, ApiErrors.OpenAiType(error.Kind), error.Param, error.Code));

    public static async Task WriteAsync(HttpContext context, ApiError error)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(error);
        var response = context.Response;
        if (response.HasStarted) return;
        response.StatusCode = ApiErrors.HttpStatus(error.Kind);
        if (error.RetryAfter is { } retryAfter) response.Headers.RetryAfter = ApiErrors.RetryAfterSeconds(retryAfter);
        if (error.Kind == ApiErrorKind.Unauthenticated) response.Headers.WWWAuthenticate = "Bearer";
        await response.WriteAsJsonAsync(Body(error), OpenAiJsonContext.Default.ErrorResponse, contentType: "application/json", context.RequestAborted);
    }
}
