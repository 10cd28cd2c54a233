using System.Globalization;
using System.Text.Json.Serialization;

namespace DeepSeek.Gateway.Api;

/// <summary>
/// A request the gateway answers itself, in the runtime's error shape (OpenAI's,
/// <c>{"error": {"message", "type", "param", "code"}}</c>, docs/api.md "Errors"), so a client sees one
/// shape whether the gateway or a runtime refused it.
/// </summary>
internal sealed record GatewayError(int Status, string Type, string Message, string? Code, string? Param = null)
{
    public TimeSpan? RetryAfter { get; init; }

    public static GatewayError Invalid(string message, string? param = null, string code = "invalid_value") =>
        new(StatusCodes.Status400BadRequest, "invalid_request_error", message, code, param);

    public static GatewayError MissingKey() => new(StatusCodes.Status401Unauthorized, "authentication_error",
        "This gateway needs an API key: send Authorization: Bearer KEY.", "invalid_api_key");

    public static GatewayError UnknownKey() => new(StatusCodes.Status401Unauthorized, "authentication_error",
        "The API key is not known to this gateway.", "invalid_api_key");

    public static GatewayError NotInScope(string model) => new(StatusCodes.Status403Forbidden, "permission_error",
        $"This API key may not use the model '{model}'; GET /v1/models lists those it may.", "model_not_allowed", "model");

    public static GatewayError UnknownModel(string model) => new(StatusCodes.Status404NotFound, "invalid_request_error",
        $"The model '{model}' does not exist here; GET /v1/models lists those you may use.", "model_not_found", "model");

    public static GatewayError UnknownUrl(string path) => new(StatusCodes.Status404NotFound, "invalid_request_error",
        $"Unknown path {path}: this gateway serves POST /v1/chat/completions, /v1/completions, /v1/embeddings and GET /v1/models.", "unknown_url");

    public static GatewayError WrongMethod(string method, string path) => new(StatusCodes.Status405MethodNotAllowed, "invalid_request_error",
        $"{method} {path} is not served: send POST.", "method_not_allowed");

    public static GatewayError TooLarge(long limit) => new(StatusCodes.Status413PayloadTooLarge, "invalid_request_error",
        $"The request body is larger than this gateway's limit of {limit} bytes.", "request_too_large");

    public static GatewayError WrongMediaType() => new(StatusCodes.Status415UnsupportedMediaType, "invalid_request_error",
        "Send the body as JSON: Content-Type: application/json (UTF-8).", "unsupported_media_type");

    public static GatewayError RateLimited(string what, TimeSpan retryAfter) => new(StatusCodes.Status429TooManyRequests, "rate_limit_error",
        $"This API key has used its {what} for this minute; retry after the Retry-After header's seconds.", "rate_limit_exceeded") { RetryAfter = retryAfter };

    public static GatewayError NothingReady(string model, double holdSeconds) => new(StatusCodes.Status503ServiceUnavailable, "service_unavailable_error",
        $"No endpoint of the model '{model}' was ready within {holdSeconds.ToString(CultureInfo.InvariantCulture)} s; retry later.", "unavailable")
        { RetryAfter = TimeSpan.FromSeconds(5) };

    public static GatewayError Timeout(string model, double seconds) => new(StatusCodes.Status504GatewayTimeout, "timeout_error",
        $"The model '{model}' sent nothing for {seconds.ToString(CultureInfo.InvariantCulture)} s (its timeoutSeconds); the request was cancelled upstream.", "timeout");

    /// <summary>Writes the error unless the response already started (then the connection is all there is to end).</summary>
    public async Task WriteAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var response = context.Response;
        if (response.HasStarted) return;
        response.StatusCode = Status;
        if (RetryAfter is { } retryAfter)
            response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        if (Status == StatusCodes.Status401Unauthorized) response.Headers.WWWAuthenticate = "Bearer";
        var body = new ErrorResponse(new ErrorResponse.Body(Message, Type, Param, Code));
        await response.WriteAsJsonAsync(body, GatewayJsonContext.Default.ErrorResponse, contentType: "application/json", context.RequestAborted);
    }
}

internal sealed record ErrorResponse(ErrorResponse.Body Error)
{
    internal sealed record Body(
        string Message,
        string Type,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Param,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Code);
}
