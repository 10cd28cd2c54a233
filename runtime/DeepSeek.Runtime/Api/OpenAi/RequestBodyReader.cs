using System.Buffers;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Text.Unicode;

namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary>
/// Reads a JSON request body under a size limit and turns every way it can be wrong (not declared
/// as JSON, too big, not UTF-8, not JSON, an unpaired surrogate escape, a field of the wrong type)
/// into a 4xx that names the problem.
/// </summary>
public static class RequestBodyReader
{
    /// <exception cref="ApiFailure">The body is not JSON by its Content-Type, too large, empty, not UTF-8, not JSON, or has a field of the wrong type.</exception>
    internal static async Task<T> ReadAsync<T>(HttpContext context, JsonTypeInfo<T> typeInfo, long limitBytes) where T : class
    {
        CheckContentType(context.Request.ContentType);
        var request = context.Request;
        if (request.ContentLength is { } declared && declared > limitBytes) throw TooLarge(declared, limitBytes);
        // One pooled buffer per body, sized by what was declared: large bodies do not leave a copy per
        // growth step behind on the large-object heap.
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(limitBytes + 1, Math.Max(request.ContentLength ?? 16 * 1024, 1)));
        try
        {
            var length = 0;
            while (true)
            {
                if (length == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(limitBytes + 1, (long)buffer.Length * 2));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
                var read = await request.Body.ReadAsync(buffer.AsMemory(length), context.RequestAborted);
                if (read == 0) break;
                length += read;
                if (length > limitBytes) throw TooLarge(length, limitBytes);
            }
            return Parse(buffer.AsSpan(0, length), typeInfo);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Only <c>application/json</c> (UTF-8): a browser sends <c>text/plain</c> cross-origin without a
    /// preflight, so accepting it would let any web page drive a key-less server.
    /// </summary>
    /// <exception cref="ApiFailure">415 for a missing or other media type or charset.</exception>
    internal static void CheckContentType(string? contentType)
    {
        if (!MediaTypeHeaderValue.TryParse(contentType, out var media)
            || !string.Equals(media.MediaType, "application/json", StringComparison.OrdinalIgnoreCase)
            || (media.CharSet is { } charset && !charset.Trim('"').Equals("utf-8", StringComparison.OrdinalIgnoreCase)))
            throw new ApiFailure(new ApiError(ApiErrorKind.UnsupportedMediaType,
                $"The request body must be sent as 'Content-Type: application/json' (UTF-8), not {(string.IsNullOrEmpty(contentType) ? "without a Content-Type" : $"'{contentType}'")}.",
                Code: "unsupported_media_type"));
    }

    /// <summary>The pure part of <see cref="ReadAsync{T}"/>: bytes in, a DTO or an <see cref="ApiFailure"/> out.</summary>
    internal static T Parse<T>(ReadOnlySpan<byte> bytes, JsonTypeInfo<T> typeInfo) where T : class
    {
        if (bytes.IsEmpty) throw Invalid(null, "The request body is empty; send a JSON object.");
        if (!Utf8.IsValid(bytes)) throw Invalid(null, "The request body is not valid UTF-8; encode the JSON as UTF-8.");
        CheckSyntax(bytes);
        try
        {
            return JsonSerializer.Deserialize(bytes, typeInfo)
                ?? throw Invalid(null, "The request body is null; send a JSON object.");
        }
        catch (JsonException e)
        {
            var path = e.Path ?? "$";
            if (path == "$") throw Invalid(null, "The request body must be a JSON object.");
            var param = path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path;
            throw Invalid(param, $"Field '{param}' has the wrong type or is out of range: expected {ExpectedType(param)}.");
        }
    }

    private static void CheckSyntax(ReadOnlySpan<byte> bytes)
    {
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = MaxDepth });
        var path = new JsonKeyPath();
        string? property = null;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject or JsonTokenType.StartArray:
                        path.Enter(reader.TokenType == JsonTokenType.StartObject);
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        path.Leave();
                        break;
                    case JsonTokenType.PropertyName:
                        property = Text(ref reader, null);
                        // Compared as decoded text: "max_tokens" and "max\u005ftokens" are one key.
                        if (!path.TryAddKey(property))
                            throw Invalid(path.Current, $"Field '{path.Current}' is sent more than once; send it once (JSON does not say which of two values counts).", "duplicate_key");
                        break;
                    default:
                        path.Value();
                        if (reader.TokenType == JsonTokenType.String && reader.ValueIsEscaped) Text(ref reader, property);
                        break;
                }
            }
        }
        catch (JsonException e)
        {
            // The reader refuses to open a level beyond MaxDepth (it then stands on the deepest one it
            // holds); a body cut short inside open levels, whose message also speaks of depth, is a
            // syntax error like any other.
            throw Invalid(null, reader.CurrentDepth >= MaxDepth - 1
                ? $"The request body nests deeper than {MaxDepth} levels; flatten it."
                : $"The request body is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}): {FirstSentence(e.Message)} Fix the JSON syntax.");
        }
    }

    /// <summary>The string the reader stands on; an escape such as \ud800 without its pair is valid JSON syntax but no Unicode text.</summary>
    private static string Text(ref Utf8JsonReader reader, string? param)
    {
        try
        {
            return reader.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw Invalid(param,
                "A string in the request body holds an escaped unpaired UTF-16 surrogate (such as \\ud800); send valid Unicode text.",
                "invalid_unicode");
        }
    }

    private static ApiFailure TooLarge(long size, long limit) => new(new ApiError(ApiErrorKind.PayloadTooLarge,
        $"The request body ({size} bytes or more) exceeds this server's limit of {limit} bytes (--max-request-bytes); send fewer or shorter inputs per request.",
        Code: "request_too_large"));

    /// <summary>What Kestrel says about a body it could not read (stalled, cut short, too large) as an OpenAI error.</summary>
    internal static ApiError FromBadRequest(BadHttpRequestException e) => e.StatusCode switch
    {
        StatusCodes.Status408RequestTimeout => new ApiError(ApiErrorKind.RequestTimeout,
            "The request body arrived too slowly; send it at once.", Code: "request_timeout"),
        StatusCodes.Status413PayloadTooLarge => new ApiError(ApiErrorKind.PayloadTooLarge,
            "The request body exceeds this server's limit (--max-request-bytes).", Code: "request_too_large"),
        _ => ApiError.Invalid(null, "The request could not be read: it ended before its declared length or is malformed HTTP.", "bad_request"),
    };

    private const int MaxDepth = 64;

    private static ApiFailure Invalid(string? param, string message, string code = "invalid_value") => new(ApiError.Invalid(param, message, code));

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return end < 0 ? message : message[..(end + 1)];
    }

    /// <summary>What a field should hold, for the wrong-type message; keyed by the field's own name.</summary>
    private static string ExpectedType(string path)
    {
        // A map's values are named by the map, whatever their key ("metadata.n" is no n).
        var map = path.IndexOfAny(['.', '[']) is var end and > 0 ? path[..end] : path;
        if (map == "metadata" && map != path) return "a string";
        if (map == "logit_bias" && map != path) return "a number (the bias of that token id)";
        var name = path;
        var dot = name.LastIndexOf('.');
        if (dot >= 0) name = name[(dot + 1)..];
        var bracket = name.IndexOf('[', StringComparison.Ordinal);
        var element = bracket >= 0;
        if (element) name = name[..bracket];
        return name switch
        {
            "temperature" or "top_p" or "presence_penalty" or "frequency_penalty" or "repetition_penalty" => "a number",
            "max_tokens" or "max_completion_tokens" or "n" or "top_k" or "min_tokens" or "top_logprobs" or "dimensions"
                => "an integer between -2147483648 and 2147483647",
            "seed" => "an integer between 0 and 9223372036854775807",
            "stream" or "include_usage" or "return_tokens_as_token_ids" or "parallel_tool_calls" or "store" or "strict" => "true or false",
            "logprobs" => "true or false for chat completions, an integer 0-20 for completions",
            "model" or "user" or "role" or "name" or "encoding_format" or "service_tier" or "type" or "description" or "id" or "tool_call_id" => "a string",
            "arguments" => "a string (the arguments' JSON text)",
            "tools" => element ? "a tool object {\"type\": \"function\", \"function\": {...}}" : "a list of tool objects",
            "tool_calls" => element ? "a tool call object {\"id\": ..., \"type\": \"function\", \"function\": {...}}" : "a list of tool call objects",
            "function" => "an object such as {\"name\": \"get_weather\", ...}",
            "stop_token_ids" => element ? "an integer token id" : "a list of integer token ids",
            "messages" => element ? "a message object {\"role\": ..., \"content\": ...}" : "a list of message objects",
            "stream_options" => "an object such as {\"include_usage\": true}",
            "response_format" => "an object such as {\"type\": \"text\"}",
            "json_schema" => "an object such as {\"name\": \"answer\", \"schema\": {...}}",
            "logit_bias" => "an object mapping token ids to biases, or null",
            "metadata" => "an object mapping names to strings, or null",
            _ => "the type docs/api.md gives for it",
        };
    }
}
