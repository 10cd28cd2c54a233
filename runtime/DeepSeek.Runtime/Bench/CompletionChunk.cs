using System.Text.Json;

namespace DeepSeek.Runtime.Bench;

/// <summary>
/// What the load generator needs from one streamed <c>/v1/completions</c> chunk: how many tokens it
/// carries, the usage when it is the usage chunk, and the message when the server streamed an error.
/// </summary>
public sealed record CompletionChunk(int Tokens, int? UsageCompletionTokens, string? Error)
{
    /// <summary>
    /// Tokens are counted from <c>logprobs.tokens</c> when present (one entry per token, also for
    /// tokens whose text is empty); without logprobs a chunk with text and no finish reason is one
    /// token, and a finishing chunk's text is text held back by the detokenizer, not a token.
    /// </summary>
    public static CompletionChunk Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new FormatException($"A stream chunk is not a JSON object: {Shorten(json)}");
        if (root.TryGetProperty("error", out var error))
            return new CompletionChunk(0, null, error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var message) ? message.ToString() : error.ToString());

        int? usage = root.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object && u.TryGetProperty("completion_tokens", out var completion)
            ? completion.GetInt32()
            : null;
        var tokens = 0;
        if (root.TryGetProperty("choices", out var choices) && choices.ValueKind == JsonValueKind.Array)
        {
            foreach (var choice in choices.EnumerateArray())
            {
                if (choice.TryGetProperty("logprobs", out var logprobs) && logprobs.ValueKind == JsonValueKind.Object
                    && logprobs.TryGetProperty("tokens", out var list) && list.ValueKind == JsonValueKind.Array)
                {
                    tokens += list.GetArrayLength();
                    continue;
                }
                var finished = choice.TryGetProperty("finish_reason", out var finish) && finish.ValueKind == JsonValueKind.String;
                if (!finished && choice.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String && text.GetString()!.Length > 0)
                    tokens++;
            }
        }
        return new CompletionChunk(tokens, usage, null);
    }

    internal static string Shorten(string text) => text.Length <= 200 ? text : text[..200] + "…";
}
