using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace DeepSeek.Model.Tokenization;

/// <summary>
/// DeepSeek-V3's chat template (its tokenizer_config.json <c>chat_template</c>), built in rather than
/// interpreted: <c>&lt;｜begin▁of▁sentence｜&gt;{system}&lt;｜User｜&gt;{user}&lt;｜Assistant｜&gt;{assistant}&lt;｜end▁of▁sentence｜&gt;…</c>.
/// System messages are joined by a blank line and placed right after the BOS token; an assistant
/// turn drops any reasoning before <c>&lt;/think&gt;</c>, as the template does.
/// </summary>
/// <remarks>
/// Tool calls follow DeepSeek-V3's format, which this class is the one home of (the call grammar and
/// <see cref="ToolCallParser"/> read its markers from here). An assistant's calls:
/// <c>&lt;｜tool▁calls▁begin｜&gt;&lt;｜tool▁call▁begin｜&gt;function&lt;｜tool▁sep｜&gt;NAME\n```json\nARGS\n```&lt;｜tool▁call▁end｜&gt;</c>,
/// further calls after a line break, then <c>&lt;｜tool▁calls▁end｜&gt;&lt;｜end▁of▁sentence｜&gt;</c>. Consecutive
/// tool messages share one <c>&lt;｜tool▁outputs▁begin｜&gt;…&lt;｜tool▁outputs▁end｜&gt;</c> block, its outputs
/// a line apart; the assistant then continues right after the block, without <c>&lt;｜Assistant｜&gt;</c>, as
/// DeepSeek's template does. Offered functions are described at the end of the system prompt (one
/// JSON object a line, with how to call them), as vLLM's DeepSeek-V3 tool template places them.
/// </remarks>
public static class ChatTemplate
{
    public const string BeginOfSentence = "<｜begin▁of▁sentence｜>";
    public const string EndOfSentence = "<｜end▁of▁sentence｜>";
    public const string User = "<｜User｜>";
    public const string Assistant = "<｜Assistant｜>";

    public const string ToolCallsBegin = "<｜tool▁calls▁begin｜>";
    public const string ToolCallBegin = "<｜tool▁call▁begin｜>";
    public const string ToolSep = "<｜tool▁sep｜>";
    public const string ToolCallEnd = "<｜tool▁call▁end｜>";
    public const string ToolCallsEnd = "<｜tool▁calls▁end｜>";
    public const string ToolOutputsBegin = "<｜tool▁outputs▁begin｜>";
    public const string ToolOutputBegin = "<｜tool▁output▁begin｜>";
    public const string ToolOutputEnd = "<｜tool▁output▁end｜>";
    public const string ToolOutputsEnd = "<｜tool▁outputs▁end｜>";

    /// <summary>The one call type of the format.</summary>
    public const string FunctionType = "function";

    /// <summary>Between a call's name and its arguments.</summary>
    public const string ArgumentsOpening = "\n```json\n";

    /// <summary>After a call's arguments: the fence, then the call's end marker.</summary>
    public const string ArgumentsClosing = "\n```" + ToolCallEnd;

    /// <summary>Between two calls of one turn.</summary>
    public const string CallSeparator = "\n";

    /// <summary>The markers a model writes when it calls functions: the engine's decoder keeps them in the text even where a vocabulary marks them special.</summary>
    public static IReadOnlySet<string> ToolCallMarkers { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        ToolCallsBegin, ToolCallBegin, ToolSep, ToolCallEnd, ToolCallsEnd,
    };

    /// <summary>The text of one call up to its arguments: <c>&lt;｜tool▁call▁begin｜&gt;function&lt;｜tool▁sep｜&gt;NAME\n```json\n</c>.</summary>
    public static string CallOpening(string name) => ToolCallBegin + FunctionType + ToolSep + name + ArgumentsOpening;

    /// <summary>The template as text (control tokens written out): what Hugging Face's <c>apply_chat_template(tokenize=False)</c> returns.</summary>
    public static string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, string beginOfSentence = BeginOfSentence,
        IReadOnlyList<ChatTool>? tools = null)
    {
        var text = new StringBuilder();
        foreach (var (piece, _) in Pieces(messages, addGenerationPrompt, beginOfSentence, tools ?? [])) text.Append(piece);
        return text.ToString();
    }

    /// <summary>
    /// The template as token ids: its markers that are added tokens of the vocabulary as their ids, and
    /// the text between them — the template's own words, markers the vocabulary lacks (as the tiny
    /// fixtures lack the tool markers), and every message's content, tool definitions, call arguments and
    /// tool outputs included — encoded as one plain text, as Hugging Face encodes the rendered template
    /// between its added tokens, except that special-token text inside content is split like any other
    /// text (Hugging Face's <c>split_special_tokens=True</c>), so a client cannot forge a turn.
    /// </summary>
    public static int[] Encode(BpeTokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true,
        IReadOnlyList<ChatTool>? tools = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var ids = new List<int>();
        var run = new StringBuilder();
        foreach (var (piece, marker) in Pieces(messages, addGenerationPrompt, BeginOfSentence, tools ?? []))
        {
            if (marker && tokenizer.AddedTokenId(piece) is { } id)
            {
                ids.AddRange(tokenizer.Encode(run.ToString(), splitSpecialTokens: true));
                run.Clear();
                ids.Add(id);
            }
            else
            {
                run.Append(piece);
            }
        }
        ids.AddRange(tokenizer.Encode(run.ToString(), splitSpecialTokens: true));
        return [.. ids];
    }

    /// <summary>The template in order: each piece with whether it is one of the template's markers (a control token where the vocabulary has it).</summary>
    private static IEnumerable<(string Piece, bool Marker)> Pieces(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, string beginOfSentence,
        IReadOnlyList<ChatTool> tools)
    {
        ArgumentNullException.ThrowIfNull(messages);
        foreach (var message in messages)
            if (message.Role is not ("system" or "user" or "assistant" or "tool"))
                throw new ArgumentException($"Chat role \"{message.Role}\" is not supported; use system, user, assistant or tool.", nameof(messages));

        yield return (beginOfSentence, true);
        var systemPrompt = string.Join("\n\n", messages.Where(m => m.Role == "system").Select(m => m.Content));
        if (systemPrompt.Length > 0) yield return (systemPrompt, false);
        if (tools.Count > 0)
        {
            if (systemPrompt.Length > 0) yield return ("\n\n", false);
            foreach (var piece in ToolsSection(tools)) yield return piece;
        }

        var inOutputs = false;
        foreach (var message in messages)
        {
            if (message.Role == "tool")
            {
                yield return inOutputs ? ("\n", false) : (ToolOutputsBegin, true);
                inOutputs = true;
                yield return (ToolOutputBegin, true);
                if (message.Content.Length > 0) yield return (message.Content, false);
                yield return (ToolOutputEnd, true);
                continue;
            }
            if (message.Role == "system") continue;
            // The assistant's turn goes on after the outputs of its calls; anything else starts a new turn.
            var continuesAfterOutputs = inOutputs && message.Role == "assistant";
            if (inOutputs) yield return (ToolOutputsEnd, true);
            inOutputs = false;
            if (message.Role == "user")
            {
                yield return (User, true);
                if (message.Content.Length > 0) yield return (message.Content, false);
                continue;
            }
            var content = message.Content;
            var think = content.LastIndexOf("</think>", StringComparison.Ordinal);
            if (think >= 0) content = content[(think + "</think>".Length)..];
            if (!continuesAfterOutputs) yield return (Assistant, true);
            if (content.Length > 0) yield return (content, false);
            if (message.ToolCalls is { Count: > 0 } calls)
            {
                yield return (ToolCallsBegin, true);
                for (var i = 0; i < calls.Count; i++)
                {
                    if (i > 0) yield return (CallSeparator, false);
                    yield return (ToolCallBegin, true);
                    yield return (FunctionType, false);
                    yield return (ToolSep, true);
                    yield return (calls[i].Name, false);
                    yield return (ArgumentsOpening, false);
                    yield return (calls[i].Arguments, false);
                    yield return ("\n```", false);
                    yield return (ToolCallEnd, true);
                }
                yield return (ToolCallsEnd, true);
            }
            yield return (EndOfSentence, true);
        }
        if (inOutputs) yield return (ToolOutputsEnd, true);
        else if (addGenerationPrompt) yield return (Assistant, true);
    }

    /// <summary>The offered functions and how to call them, for the end of the system prompt.</summary>
    private static IEnumerable<(string Piece, bool Marker)> ToolsSection(IReadOnlyList<ChatTool> tools)
    {
        yield return ("## Tools\n\nYou can call one or more of these functions to help with the user's request. "
            + "Their definitions, one JSON object a line, are between <tools> and </tools>:\n<tools>\n", false);
        foreach (var tool in tools) yield return (ToolJson(tool) + "\n", false);
        yield return ("</tools>\n\nTo call functions, write ", false);
        yield return (ToolCallsBegin, true);
        yield return (", then each call as ", false);
        yield return (ToolCallBegin, true);
        yield return (FunctionType, false);
        yield return (ToolSep, true);
        yield return ("FUNCTION_NAME" + ArgumentsOpening + "ARGUMENTS_AS_JSON\n```", false);
        yield return (ToolCallEnd, true);
        yield return (" (a line break between calls), and finally ", false);
        yield return (ToolCallsEnd, true);
        yield return (".", false);
    }

    private static readonly JsonWriterOptions CompactWriter = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>One offered function as OpenAI's tool object, compact: <c>{"type":"function","function":{"name","description","parameters"}}</c>.</summary>
    public static string ToolJson(ChatTool tool)
    {
        ArgumentNullException.ThrowIfNull(tool);
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, CompactWriter))
        {
            writer.WriteStartObject();
            writer.WriteString("type", FunctionType);
            writer.WriteStartObject("function");
            writer.WriteString("name", tool.Name);
            if (tool.Description is { } description) writer.WriteString("description", description);
            if (tool.ParametersJson is { } parameters)
            {
                writer.WritePropertyName("parameters");
                using var document = JsonDocument.Parse(parameters);
                document.RootElement.WriteTo(writer);
            }
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
