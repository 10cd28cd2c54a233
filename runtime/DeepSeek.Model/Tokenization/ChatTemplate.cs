using System.Text;

namespace DeepSeek.Model.Tokenization;

/// <summary>
/// DeepSeek-V3's chat template (its tokenizer_config.json <c>chat_template</c>, without tool calls):
/// <c>&lt;｜begin▁of▁sentence｜&gt;{system}&lt;｜User｜&gt;{user}&lt;｜Assistant｜&gt;{assistant}&lt;｜end▁of▁sentence｜&gt;…</c>.
/// System messages are joined by a blank line and placed right after the BOS token; an assistant
/// turn drops any reasoning before <c>&lt;/think&gt;</c>, as the template does.
/// </summary>
public static class ChatTemplate
{
    public const string BeginOfSentence = "<｜begin▁of▁sentence｜>";
    public const string EndOfSentence = "<｜end▁of▁sentence｜>";
    public const string User = "<｜User｜>";
    public const string Assistant = "<｜Assistant｜>";

    public static string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, string beginOfSentence = BeginOfSentence)
    {
        var systemPrompt = string.Join("\n\n", messages.Where(m => m.Role == "system").Select(m => m.Content));
        var text = new StringBuilder(beginOfSentence).Append(systemPrompt);
        foreach (var message in messages)
        {
            switch (message.Role)
            {
                case "system":
                    break;
                case "user":
                    text.Append(User).Append(message.Content);
                    break;
                case "assistant":
                    var content = message.Content;
                    var think = content.LastIndexOf("</think>", StringComparison.Ordinal);
                    if (think >= 0) content = content[(think + "</think>".Length)..];
                    text.Append(Assistant).Append(content).Append(EndOfSentence);
                    break;
                default:
                    throw new ArgumentException($"Chat role \"{message.Role}\" is not supported; use system, user or assistant.", nameof(messages));
            }
        }
        if (addGenerationPrompt) text.Append(Assistant);
        return text.ToString();
    }
}
