using DeepSeek.Runtime.Api.Auth;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace DeepSeek.Runtime.Api.Grpc;

/// <summary>
/// With an API key set, the Inference service needs metadata <c>authorization: Bearer &lt;key&gt;</c>,
/// except <c>GetLoad</c>, which the autoscaler reads like <c>/metrics</c>.
/// </summary>
public sealed class ApiKeyInterceptor(ApiKey? key) : Interceptor
{
    private const string GuardedService = "/deepseek.runtime.v1.Inference/";
    private const string OpenMethod = GuardedService + "GetLoad";

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, responseStream, context);
    }

    private void Check(ServerCallContext context)
    {
        if (key is null || !context.Method.StartsWith(GuardedService, StringComparison.Ordinal) || context.Method == OpenMethod) return;
        if (!key.MatchesAuthorizationHeader(context.RequestHeaders.GetValue("authorization")))
            throw new RpcException(new Status(StatusCode.Unauthenticated, "Send metadata 'authorization: Bearer <key>' with the server's API key."),
                new Metadata { { "error-code", "invalid_api_key" } });
    }
}
