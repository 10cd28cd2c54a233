using System.Text.Json;
using Microsoft.Net.Http.Headers;

namespace DeepSeek.Gateway.Api;

/// <summary>A request body read whole (it is small: a prompt, not a file) and parsed, with its <c>model</c>.</summary>
internal sealed class RequestBody(byte[] bytes, JsonDocument document, string model) : IDisposable
{
    public byte[] Bytes { get; } = bytes;
    public JsonElement Json => document.RootElement;
    public string Model { get; } = model;

    public void Dispose() => document.Dispose();

    /// <summary>
    /// Reads at most <paramref name="limit"/> bytes (declared larger: refused before reading) and parses
    /// them; the error is the client's to fix and no runtime sees the request.
    /// </summary>
    public static async Task<(RequestBody? Body, GatewayError? Error)> ReadAsync(HttpRequest request, long limit)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!IsJson(request.ContentType)) return (null, GatewayError.WrongMediaType());
        if (request.ContentLength > limit) return (null, GatewayError.TooLarge(limit));
        byte[] bytes;
        try
        {
            // A declared length (what clients send) is read straight into its array; a chunked body grows a buffer.
            if (request.ContentLength is { } declared)
            {
                bytes = new byte[declared];
                var filled = 0;
                while (filled < bytes.Length)
                {
                    var read = await request.Body.ReadAsync(bytes.AsMemory(filled), request.HttpContext.RequestAborted);
                    if (read == 0) break;
                    filled += read;
                }
                // Kestrel itself refuses a body shorter than its Content-Length; this is the same answer should one get here.
                if (filled < bytes.Length)
                    return (null, GatewayError.Invalid($"The body ended after {filled} of its {bytes.Length} declared bytes.", code: "invalid_body"));
            }
            else
            {
                using var buffer = new MemoryStream();
                var chunk = System.Buffers.ArrayPool<byte>.Shared.Rent(16 * 1024);
                try
                {
                    int read;
                    while ((read = await request.Body.ReadAsync(chunk, request.HttpContext.RequestAborted)) > 0)
                    {
                        if (buffer.Length + read > limit) return (null, GatewayError.TooLarge(limit));
                        buffer.Write(chunk, 0, read);
                    }
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(chunk);
                }
                bytes = buffer.ToArray();
            }
        }
        catch (BadHttpRequestException e)
        {
            return (null, new GatewayError(e.StatusCode, "invalid_request_error", $"The request body could not be read: {e.Message}", "invalid_body"));
        }
        // The JSON reader checks UTF-8 only where it decodes; a bad byte inside a string would pass to the runtime.
        if (!System.Text.Unicode.Utf8.IsValid(bytes)) return (null, GatewayError.Invalid("The body is not valid UTF-8.", code: "invalid_json"));
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            return (null, GatewayError.Invalid($"The body is not valid JSON: {e.Message}", code: "invalid_json"));
        }
        var root = document.RootElement;
        var error = root.ValueKind != JsonValueKind.Object
            ? GatewayError.Invalid("The body must be a JSON object.", code: "invalid_json")
            : root.EnumerateObject().Count(p => p.NameEquals("model")) switch
            {
                0 => GatewayError.Invalid("The body has no 'model': name the model to use.", "model", "missing_required_parameter"),
                > 1 => GatewayError.Invalid("'model' is given more than once.", "model", "duplicate_key"),
                _ => root.GetProperty("model") is { ValueKind: JsonValueKind.String } model && model.GetString() is { Length: > 0 }
                    ? null
                    : GatewayError.Invalid("'model' must be a non-empty string.", "model"),
            };
        if (error is not null)
        {
            document.Dispose();
            return (null, error);
        }
        return (new RequestBody(bytes, document, root.GetProperty("model").GetString()!), null);
    }

    /// <summary>
    /// Whether the gateway asks the usage of this stream on the client's behalf: streamed, and
    /// <c>stream_options</c> absent, null, or an object without <c>include_usage: true</c> (any other
    /// <c>stream_options</c> goes to the runtime as sent, which answers it).
    /// </summary>
    public bool NeedsUsageAsked()
    {
        if (!Json.TryGetProperty("stream", out var stream) || stream.ValueKind != JsonValueKind.True) return false;
        if (!Json.TryGetProperty("stream_options", out var options) || options.ValueKind == JsonValueKind.Null) return true;
        return options.ValueKind == JsonValueKind.Object
            && !(options.TryGetProperty("include_usage", out var include) && include.ValueKind == JsonValueKind.True);
    }

    /// <summary>
    /// The body as the runtime gets it: <c>model</c> set to <paramref name="servedName"/> (a variant whose
    /// runtimes serve another name) and, with <paramref name="askUsage"/>, <c>stream_options.include_usage</c>
    /// set (<see cref="NeedsUsageAsked"/>); every other field as sent.
    /// </summary>
    public byte[] Forwarded(string servedName, bool askUsage)
    {
        if (servedName == Model && !askUsage) return Bytes;
        using var buffer = new MemoryStream(Bytes.Length + 64);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            var optionsWritten = false;
            foreach (var property in Json.EnumerateObject())
            {
                if (property.NameEquals("model"))
                {
                    writer.WriteString("model", servedName);
                }
                else if (askUsage && property.NameEquals("stream_options"))
                {
                    WriteUsageAsked(writer, property.Value);
                    optionsWritten = true;
                }
                else
                {
                    property.WriteTo(writer);
                }
            }
            if (askUsage && !optionsWritten) WriteUsageAsked(writer, default);
            writer.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static void WriteUsageAsked(Utf8JsonWriter writer, JsonElement options)
    {
        writer.WriteStartObject("stream_options");
        if (options.ValueKind == JsonValueKind.Object)
            foreach (var option in options.EnumerateObject().Where(o => !o.NameEquals("include_usage"))) option.WriteTo(writer);
        writer.WriteBoolean("include_usage", true);
        writer.WriteEndObject();
    }

    /// <summary>application/json, with no charset or UTF-8 (what the runtime accepts too).</summary>
    private static bool IsJson(string? contentType)
    {
        if (contentType is null || !MediaTypeHeaderValue.TryParse(contentType, out var media)) return false;
        if (!media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)) return false;
        return media.Charset.Length == 0 || media.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase);
    }
}
