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

    /// <summary>The template as text (control tokens written out): what Hugging Face's <c>apply_chat_template(tokenize=False)</c> returns.</summary>
    public static string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, string beginOfSentence = BeginOfSentence)
    {
        var text = new StringBuilder();
        foreach (var (piece, _) in Pieces(messages, addGenerationPrompt, beginOfSentence)) text.Append(piece);
        return text.ToString();
    }

    /// <summary>
    /// The template as token ids: its own control tokens as their ids, and every message's content
    /// encoded as plain text (special-token text inside content is split like any other text, as
    /// Hugging Face's <c>split_special_tokens=True</c> does), so a client cannot forge a turn.
    /// </summary>
    public static int[] Encode(BpeTokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var ids = new List<int>();
        foreach (var (piece, control) in Pieces(messages, addGenerationPrompt, BeginOfSentence))
        {
            if (control && tokenizer.IdOf(piece) is { } id) ids.Add(id);
            else ids.AddRange(tokenizer.Encode(piece, splitSpecialTokens: !control));
        }
        return [.. ids];
    }

    /// <summary>The template in order: each piece with whether it is one of the template's control tokens.</summary>
    private static IEnumerable<(string Piece, bool Control)> Pieces(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, string beginOfSentence)
    {
        ArgumentNullException.ThrowIfNull(messages);
        foreach (var message in messages)
            if (message.Role is not ("system" or "user" or "assistant"))
                throw new ArgumentException($"Chat role \"{message.Role}\" is not supported; use system, user or assistant.", nameof(messages));

        yield return (beginOfSentence, true);
        var systemPrompt = string.Join("\n\n", messages.Where(m => m.Role == "system").Select(m => m.Content));
        if (systemPrompt.Length > 0) yield return (systemPrompt, false);
        foreach (var message in messages)
        {
            switch (message.Role)
            {
                case "user":
                    yield return (User, true);
                    if (message.Content.Length > 0) yield return (message.Content, false);
                    break;
                case "assistant":
                    var content = message.Content;
                    var think = content.LastIndexOf("</think>", StringComparison.Ordinal);
                    if (think >= 0) content = content[(think + "</think>".Length)..];
                    yield return (Assistant, true);
                    if (content.Length > 0) yield return (content, false);
                    yield return (EndOfSentence, true);
                    break;
            }
        }
        if (addGenerationPrompt) yield return (Assistant, true);
    }
}
