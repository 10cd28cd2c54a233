using System.Globalization;
using DeepSeek.Runtime.Api.Auth;
using Microsoft.AspNetCore.Http.Features;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// Ranks of a group prove membership with the group token (metadata <c>authorization: Bearer
/// &lt;token&gt;</c>) on every call to the expert listener: hidden states are the users' prompts, and
/// a rank that computes for anyone is a data leak and a denial-of-service lever. Checked from the
/// headers before a byte of the body is read (a gRPC interceptor runs only after the framework has
/// buffered and parsed the whole message, so strangers could make a rank hold hundreds of MiB); only
/// a member's call is then allowed a body of <see cref="ExpertMessageLimit"/>.
/// </summary>
public sealed class GroupTokenGate(RequestDelegate next, ApiKey token, int maxMessageBytes)
{
    /// <summary>gRPC's frame header (compression flag and length) before each message.</summary>
    private const int FrameHeaderBytes = 5;

    public Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!token.MatchesAuthorizationHeader(context.Request.Headers.Authorization))
        {
            // A trailers-only response: status in the headers, the body left unread.
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/grpc";
            context.Response.Headers["grpc-status"] = ((int)global::Grpc.Core.StatusCode.Unauthenticated).ToString(CultureInfo.InvariantCulture);
            context.Response.Headers["grpc-message"] = Uri.EscapeDataString("Experts calls need metadata 'authorization: Bearer <group token>' with this group's token.");
            return Task.CompletedTask;
        }
        // Kestrel's own body limit applies to every listener; a member's unary call may carry one layer's exchange.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } body)
            body.MaxRequestBodySize = (long)maxMessageBytes + FrameHeaderBytes;
        return next(context);
    }
}
