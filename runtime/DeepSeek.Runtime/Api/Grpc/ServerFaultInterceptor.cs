using Grpc.Core;
using Grpc.Core.Interceptors;

namespace DeepSeek.Runtime.Api.Grpc;

/// <summary>
/// The one place an unexpected exception of a gRPC handler becomes a status: a server fault (LibTorch
/// out of memory, a shape error escaping a step, any bug) is INTERNAL with trailer
/// <c>error-code: internal_error</c> and a fixed message, as the error table says; the exception and
/// its stack trace go to the server log only. Statuses the handlers chose (<see cref="RpcException"/>)
/// and cancellations pass unchanged. Without it the framework answers UNKNOWN.
/// </summary>
public sealed partial class ServerFaultInterceptor(ILogger<ServerFaultInterceptor> logger) : Interceptor
{
    public const string Message = "The server failed while handling this call; the server log says why.";

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            return await continuation(request, context);
        }
        catch (Exception e) when (IsFault(e, context))
        {
            throw Fault(e, context);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception e) when (IsFault(e, context))
        {
            throw Fault(e, context);
        }
    }

    private static bool IsFault(Exception e, ServerCallContext context) =>
        e is not RpcException && !(e is OperationCanceledException && context.CancellationToken.IsCancellationRequested);

    private RpcException Fault(Exception e, ServerCallContext context)
    {
        LogFault(logger, context.Method, e.GetType().Name, e);
        return new RpcException(new Status(StatusCode.Internal, Message), new Metadata { { "error-code", "internal_error" } });
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "gRPC {Method} failed with {ExceptionType}; the client got INTERNAL.")]
    private static partial void LogFault(ILogger logger, string method, string exceptionType, Exception exception);
}
