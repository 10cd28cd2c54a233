using DeepSeek.Runtime.Api.OpenAi;

namespace DeepSeek.Runtime.Api.Auth;

/// <summary>Guards <c>/v1/*</c> on the HTTP port; probes and metrics stay open, gRPC has its own interceptor.</summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, ApiKey key, int httpPort)
{
    public async Task InvokeAsync(HttpContext context)
    {
        if (context.Connection.LocalPort != httpPort || !context.Request.Path.StartsWithSegments("/v1") || key.MatchesAuthorizationHeader(context.Request.Headers.Authorization))
        {
            await next(context);
            return;
        }
        var missing = string.IsNullOrEmpty(context.Request.Headers.Authorization);
        await OpenAiErrors.WriteAsync(context, new ApiError(ApiErrorKind.Unauthenticated,
            missing
                ? "This server needs an API key; send the header 'Authorization: Bearer <key>'."
                : "The API key is not valid; send the key the server was started with as 'Authorization: Bearer <key>'.",
            Code: "invalid_api_key"));
    }
}
