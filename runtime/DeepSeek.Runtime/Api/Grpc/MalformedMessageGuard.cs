using System.Buffers.Binary;
using DeepSeek.Runtime.Grpc.V1;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace DeepSeek.Runtime.Api.Grpc;

/// <summary>
/// A request message that does not parse (bad wire types, invalid UTF-8 in a string, truncated) is
/// the client's error: INVALID_ARGUMENT naming the method, not the UNKNOWN and logged stack trace the
/// gRPC framework gives for an exception in its deserializer. Checks the one message of each
/// Inference call before the framework reads it.
/// </summary>
public sealed class MalformedMessageGuard(RequestDelegate next)
{
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
        context.Request.EnableBuffering(bufferThreshold: 64 * 1024, bufferLimit: MaxMessageBytes + 5);
        var problem = await CheckAsync(context.Request.Body, method.InputType, context.RequestAborted);
        context.Request.Body.Position = 0;
        if (problem is null)
        {
            await next(context);
            return;
        }
        // A trailers-only response: status in the headers, no message.
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/grpc";
        context.Response.Headers["grpc-status"] = ((int)global::Grpc.Core.StatusCode.InvalidArgument).ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.Headers["grpc-message"] = Uri.EscapeDataString($"{method.Name}: {problem}");
        context.Response.Headers["error-code"] = "invalid_message";
    }

    /// <summary>Null when the body holds one parseable message (or is compressed, which the framework checks itself).</summary>
    private static async Task<string?> CheckAsync(Stream body, MessageDescriptor type, CancellationToken cancellationToken)
    {
        var header = new byte[5];
        var read = await body.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false, cancellationToken);
        if (read < header.Length) return null; // The framework answers an empty or cut-off frame itself.
        if (header[0] != 0) return null;
        var length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(1));
        if (length > MaxMessageBytes) return null; // The framework answers RESOURCE_EXHAUSTED.
        var payload = new byte[length];
        if (await body.ReadAtLeastAsync(payload, payload.Length, throwOnEndOfStream: false, cancellationToken) < payload.Length) return null;
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
