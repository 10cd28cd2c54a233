using System.Globalization;
using System.Text;
using System.Text.Json;

namespace DeepSeek.Gateway.Routing;

/// <summary>
/// The leading characters of a request's prompt, the key of prefix affinity: requests that share a
/// system prompt or a conversation's start land on the replica whose prefix cache already holds it.
/// </summary>
internal static class PromptPrefix
{
    public const int Characters = 256;

    /// <summary>
    /// The first <paramref name="characters"/> of <c>messages</c> (each turn's role and text in order),
    /// or of <c>prompt</c> / <c>input</c> (text, the first of a list, or token ids as numbers); null when the body has none.
    /// </summary>
    public static string? From(JsonElement body, int characters = Characters)
    {
        if (body.ValueKind != JsonValueKind.Object) return null;
        var text = new StringBuilder();
        if (body.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array)
        {
            foreach (var message in messages.EnumerateArray())
            {
                if (text.Length >= characters) break;
                if (message.ValueKind != JsonValueKind.Object) continue;
                if (message.TryGetProperty("role", out var role) && role.ValueKind == JsonValueKind.String) text.Append(role.GetString()).Append(':');
                if (message.TryGetProperty("content", out var content)) AppendText(text, content, characters);
                text.Append('\n');
            }
        }
        else if (body.TryGetProperty("prompt", out var prompt) || body.TryGetProperty("input", out prompt))
        {
            AppendText(text, prompt, characters);
        }
        if (text.Length == 0) return null;
        return text.Length > characters ? text.ToString(0, characters) : text.ToString();
    }

    private static void AppendText(StringBuilder text, JsonElement value, int characters)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                text.Append(value.GetString());
                break;
            case JsonValueKind.Number:
                text.Append(value.GetRawText()).Append(',');
                break;
            case JsonValueKind.Array:
                foreach (var item in value.EnumerateArray())
                {
                    if (text.Length >= characters) break;
                    switch (item.ValueKind)
                    {
                        // A list of prompts (texts or token lists): the first decides, as a batch goes to one endpoint anyway.
                        case JsonValueKind.String or JsonValueKind.Array:
                            AppendText(text, item, characters);
                            return;
                        // Content parts of a chat turn: their texts in order.
                        case JsonValueKind.Object when item.TryGetProperty("text", out var part):
                            AppendText(text, part, characters);
                            break;
                        default:
                            AppendText(text, item, characters);
                            break;
                    }
                }
                break;
            case JsonValueKind.Object when value.TryGetProperty("text", out var inner):
                AppendText(text, inner, characters);
                break;
            default:
                text.Append(value.ValueKind.ToString().ToLower(CultureInfo.InvariantCulture));
                break;
        }
    }
}
