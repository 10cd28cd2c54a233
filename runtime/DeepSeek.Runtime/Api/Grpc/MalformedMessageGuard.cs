using System.Buffers.Binary;
using System.Globalization;
using DeepSeek.Runtime.Api.Auth;
using DeepSeek.Runtime.Grpc.V1;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace DeepSeek.Runtime.Api.Grpc;

/// <summary>
/// Runs before the gRPC framework reads an Inference call. First the API key, from the headers before
/// a byte of the body is read (an interceptor would run only after the framework parsed the message,
/// so a stranger's malformed message got a parse diagnostic instead of UNAUTHENTICATED); then the one
/// request message: one that does not parse (bad wire types, invalid UTF-8 in a string) or does not
/// arrive whole (a frame cut off in its header or payload, no frame at all) is the client's error,
/// INVALID_ARGUMENT naming the method, not the UNKNOWN or INTERNAL ("Incomplete message.") the
/// framework gives, which it cannot be told otherwise: its deserializer runs before any interceptor.
/// Nothing is logged for these client mistakes.
/// </summary>
public sealed class MalformedMessageGuard(RequestDelegate next, IServiceProvider services)
{
    private const string OpenMethod = "GetLoad";
    private readonly ApiKey? _key = services.GetService<ApiKey>();

    private const string ServicePrefix = "/deepseek.runtime.v1.Inference/";

    /// <summary>The framework's own limit on a received message (4 MiB by default).</summary>
    private const int MaxMessageBytes = 4 * 1024 * 1024;

    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var path = context.Request.Path.Value;
        if (!HttpMethods.IsPost(context.Request.Method) || path is null || !path.StartsWith(ServicePrefix, StringComparison.Ordinal)
            || Inference.Descriptor.FindMethodByName(path[ServicePrefix.Length..]) is not { } method)
        {
            await next(context);
            return;
        }
        if (_key is not null && method.Name != OpenMethod && !_key.MatchesAuthorizationHeader(context.Request.Headers.Authorization))
        {
            WriteStatus(context, global::Grpc.Core.StatusCode.Unauthenticated, "Send metadata 'authorization: Bearer <key>' with the server's API key.", "invalid_api_key");
            return;
        }
        context.Request.EnableBuffering(bufferThreshold: 64 * 1024, bufferLimit: MaxMessageBytes + 5);
        var problem = await CheckAsync(context.Request.Body, method.InputType, context.RequestAborted);
        context.Request.Body.Position = 0;
        if (problem is null)
        {
            await next(context);
            return;
        }
        WriteStatus(context, global::Grpc.Core.StatusCode.InvalidArgument, $"{method.Name}: {problem}", "invalid_message");
    }

    /// <summary>A trailers-only response: status in the headers, no message; the rest of the body left unread.</summary>
    private static void WriteStatus(HttpContext context, global::Grpc.Core.StatusCode status, string message, string code)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/grpc";
        context.Response.Headers["grpc-status"] = ((int)status).ToString(CultureInfo.InvariantCulture);
        context.Response.Headers["grpc-message"] = Uri.EscapeDataString(message);
        context.Response.Headers["error-code"] = code;
    }

    /// <summary>Null when the body holds one whole, parseable message (or is compressed, or too large, which the framework answers itself).</summary>
    private static async Task<string?> CheckAsync(Stream body, MessageDescriptor type, CancellationToken cancellationToken)
    {
        var header = new byte[5];
        var read = await body.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false, cancellationToken);
        if (read == 0) return $"the call carries no {type.Name} message; send one gRPC frame holding it.";
        if (read < header.Length) return $"the gRPC frame is cut off after {read} of its 5 header bytes.";
        if (header[0] != 0) return null;
        var length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(1));
        if (length > MaxMessageBytes) return null; // The framework answers RESOURCE_EXHAUSTED.
        var payload = new byte[length];
        var arrived = await body.ReadAtLeastAsync(payload, payload.Length, throwOnEndOfStream: false, cancellationToken);
        if (arrived < payload.Length) return $"the gRPC frame declares a {length}-byte {type.Name} but the body ends after {arrived} bytes.";
        try
        {
            type.Parser.ParseFrom(payload);
            return null;
        }
        catch (InvalidProtocolBufferException e)
        {
            return $"the request is not a valid {type.Name} message ({e.Message.TrimEnd('.')}).";
        }
        catch (System.Text.DecoderFallbackException)
        {
            return $"a string field of the {type.Name} is not valid UTF-8.";
        }
    }
}
