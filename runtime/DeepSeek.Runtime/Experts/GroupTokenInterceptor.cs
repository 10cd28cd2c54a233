using DeepSeek.Runtime.Api.Auth;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// Ranks of a group prove membership with the group token (metadata <c>authorization: Bearer
/// &lt;token&gt;</c>) on every Experts call: hidden states are the users' prompts, and a rank that
/// computes for anyone is a data leak and a denial-of-service lever. Without a configured token
/// every call is refused: a group with more than one rank must be given one.
/// </summary>
public sealed class GroupTokenInterceptor(ApiKey? token) : Interceptor
{
    private const string GuardedService = "/deepseek.runtime.v1.Experts/";

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(continuation);
        if (context.Method.StartsWith(GuardedService, StringComparison.Ordinal) && !(token?.MatchesAuthorizationHeader(context.RequestHeaders.GetValue("authorization")) ?? false))
            throw new RpcException(new Status(StatusCode.Unauthenticated, "Experts calls need metadata 'authorization: Bearer <group token>' with this group's token."));
        return continuation(request, context);
    }
}
