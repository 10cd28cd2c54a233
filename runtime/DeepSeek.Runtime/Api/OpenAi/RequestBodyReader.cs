using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Text.Unicode;

namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary>
/// Reads a JSON request body under a size limit and turns every way it can be wrong (too big, not
/// UTF-8, not JSON, a field of the wrong type) into a 400/413 that names the problem.
/// </summary>
public static class RequestBodyReader
{
    /// <exception cref="ApiFailure">The body is too large, empty, not UTF-8, not JSON, or has a field of the wrong type.</exception>
    internal static async Task<T> ReadAsync<T>(HttpContext context, JsonTypeInfo<T> typeInfo, long limitBytes) where T : class
    {
        var bytes = await ReadBytesAsync(context.Request, limitBytes, context.RequestAborted);
        return Parse(bytes, typeInfo);
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
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = 64 });
        try
        {
            while (reader.Read())
            {
            }
        }
        catch (JsonException e)
        {
            throw Invalid(null, $"The request body is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}): {FirstSentence(e.Message)} Fix the JSON syntax.");
        }
    }

    private static async Task<byte[]> ReadBytesAsync(HttpRequest request, long limitBytes, CancellationToken cancellationToken)
    {
        if (request.ContentLength is { } declared && declared > limitBytes) throw TooLarge(declared, limitBytes);
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > limitBytes) throw TooLarge(buffer.Length + read, limitBytes);
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    private static ApiFailure TooLarge(long size, long limit) => new(new ApiError(ApiErrorKind.PayloadTooLarge,
        $"The request body ({size} bytes or more) exceeds this server's limit of {limit} bytes (--max-request-bytes); send fewer or shorter inputs per request.",
        Code: "request_too_large"));

    private static ApiFailure Invalid(string? param, string message) => new(ApiError.Invalid(param, message));

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return end < 0 ? message : message[..(end + 1)];
    }

    /// <summary>What a field should hold, for the wrong-type message; keyed by the field's own name.</summary>
    private static string ExpectedType(string path)
    {
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
            "stream" or "include_usage" or "return_tokens_as_token_ids" => "true or false",
            "logprobs" => "true or false for chat completions, an integer 0-20 for completions",
            "model" or "user" or "role" or "name" or "encoding_format" => "a string",
            "stop_token_ids" => element ? "an integer token id" : "a list of integer token ids",
            "messages" => element ? "a message object {\"role\": ..., \"content\": ...}" : "a list of message objects",
            "stream_options" => "an object such as {\"include_usage\": true}",
            _ => "the type docs/api.md gives for it",
        };
    }
}
