using DeepSeek.Runtime.Api.OpenAi;

namespace DeepSeek.Runtime.Api.Auth;

/// <summary>Endpoint metadata: the endpoint needs the API key (the OpenAI API); probes, metrics and gRPC (its own interceptor) do not carry it.</summary>
public sealed record ApiKeyRequired;

/// <summary>
/// Runs after routing: an endpoint marked <see cref="ApiKeyRequired"/> answers only with
/// <c>Authorization: Bearer &lt;key&gt;</c>. Which endpoints exist on a connection depends on the
/// listener it arrived on (<see cref="ApiFace"/>), never on Host or any other header.
/// </summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, ApiKey key)
{
    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.GetEndpoint()?.Metadata.GetMetadata<ApiKeyRequired>() is null || key.MatchesAuthorizationHeader(context.Request.Headers.Authorization))
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
