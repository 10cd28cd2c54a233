using DeepSeek.Runtime.Serving;
using Grpc.Core;

namespace DeepSeek.Runtime.Api.Grpc;

/// <summary>The gRPC face of an <see cref="ApiError"/>: the status code, with the field named in the detail.</summary>
public static class GrpcErrors
{
    public static StatusCode Code(ApiErrorKind kind) => kind switch
    {
        ApiErrorKind.InvalidRequest or ApiErrorKind.PayloadTooLarge => StatusCode.InvalidArgument,
        ApiErrorKind.Unauthenticated => StatusCode.Unauthenticated,
        ApiErrorKind.NotFound => StatusCode.NotFound,
        ApiErrorKind.Overloaded => StatusCode.ResourceExhausted,
        ApiErrorKind.Unavailable => StatusCode.Unavailable,
        _ => StatusCode.Internal,
    };

    public static RpcException From(ApiError error)
    {
        var detail = error.Param is null ? error.Message : $"{error.Param}: {error.Message}";
        var trailers = new Metadata();
        if (error.RetryAfter is { } retryAfter)
            trailers.Add("retry-after", Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture));
        return new RpcException(new Status(Code(error.Kind), detail), trailers);
    }

    public static RpcException From(InferenceRejectedException rejected) => From(ApiError.From(rejected));
}
