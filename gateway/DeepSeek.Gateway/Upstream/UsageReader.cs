using System.Text;
using System.Text.Json;

namespace DeepSeek.Gateway.Upstream;

/// <summary>Token counts of a response, for the audit log and a key's tokens per minute.</summary>
internal readonly record struct TokenUsage(long PromptTokens, long CompletionTokens)
{
    public long Total => PromptTokens + CompletionTokens;
}

/// <summary>Finds <c>usage</c> in what a runtime answered: a JSON body, or the last events of a stream.</summary>
internal static class UsageReader
{
    /// <summary>The <c>usage</c> object of a non-streamed response; null when absent or the body is not JSON.</summary>
    public static TokenUsage? FromJson(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            return Read(document.RootElement);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// The usage of a stream from its tail: the runtime sends it in the last chunk before <c>data: [DONE]</c>
    /// only when the client asked <c>stream_options.include_usage</c>; without it the stream carries no counts.
    /// </summary>
    public static TokenUsage? FromEventStreamTail(ReadOnlySpan<byte> tail)
    {
        var text = Encoding.UTF8.GetString(tail);
        foreach (var line in text.Split('\n').Reverse())
        {
            var trimmed = line.TrimEnd('\r');
            if (!trimmed.StartsWith("data: {", StringComparison.Ordinal) || !trimmed.Contains("\"usage\"", StringComparison.Ordinal)) continue;
            if (FromJson(Encoding.UTF8.GetBytes(trimmed["data: ".Length..])) is { } usage) return usage;
        }
        return null;
    }

    /// <summary>
    /// The counts of one event when it is a stream's usage chunk (<c>data: {…}</c> with no choices and a
    /// <c>usage</c> object, the last before <c>data: [DONE]</c>); null for any other event.
    /// </summary>
    public static TokenUsage? FromUsageChunk(ReadOnlySpan<byte> item)
    {
        var data = "data: "u8;
        if (!item.StartsWith(data) || item.IndexOf("\"usage\""u8) < 0) return null;
        try
        {
            var reader = new Utf8JsonReader(item[data.Length..]);
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            return root.ValueKind == JsonValueKind.Object && root.TryGetProperty("choices", out var choices)
                && choices.ValueKind == JsonValueKind.Array && choices.GetArrayLength() == 0 ? Read(root) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static TokenUsage? Read(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("usage", out var usage) || usage.ValueKind != JsonValueKind.Object) return null;
        return new TokenUsage(Number(usage, "prompt_tokens"), Number(usage, "completion_tokens"));
    }

    private static long Number(JsonElement usage, string name) =>
        usage.TryGetProperty(name, out var value) && value.TryGetInt64(out var number) ? number : 0;
}
