using System.Text;
using System.Text.Json;
using DeepSeek.Engine.Requests;
using DeepSeek.Model.Tokenization;

namespace DeepSeek.Engine.Structured;

/// <summary>
/// One function of a request's <c>tools</c> as a face read it (<c>tools[i]</c>): its type (only
/// <c>function</c>), name, description and parameters (a JSON schema's text; null when none was sent).
/// </summary>
public sealed record ToolDefinition(string? Type, string? Name, string? Description = null, string? ParametersJson = null);

/// <summary>
/// <c>tool_choice</c> as read: <see cref="Mode"/> <c>none</c>, <c>auto</c> or <c>required</c>, or (Mode
/// null) the one function the model must call, <see cref="FunctionName"/>.
/// </summary>
public sealed record ToolChoice(string? Mode, string? FunctionName = null)
{
    public static ToolChoice Auto { get; } = new("auto");

    public bool Forces => Mode is "required" || (Mode is null && FunctionName is not null);
}

/// <summary>
/// A request's tools once checked: the functions the chat template describes to the model
/// (<see cref="Offered"/>; none with <c>tool_choice: none</c>), the names whose calls the output is
/// parsed for (<see cref="Callable"/>: all offered, or the one named), and, when a call is forced
/// (<c>required</c> or a named function), the grammar of the call text the sampler holds the output to.
/// </summary>
public sealed record CheckedTools(IReadOnlyList<ChatTool> Offered, IReadOnlySet<string> Callable, OutputConstraint? Constraint)
{
    public static CheckedTools None { get; } = new([], new HashSet<string>(), null);
}

/// <summary>
/// The grammar of DeepSeek-V3's tool-call text (<see cref="ChatTemplate"/>'s markers): the calls block's
/// begin marker, one call (or, with <c>parallel_tool_calls</c>, one or more, a line apart), each
/// <c>&lt;｜tool▁call▁begin｜&gt;function&lt;｜tool▁sep｜&gt;NAME\n```json\n</c>, NAME one of the callable
/// functions, then arguments that are a document of that function's parameters schema, then
/// <c>\n```&lt;｜tool▁call▁end｜&gt;</c>; and the block's end marker.
/// </summary>
internal static class ToolCallGrammar
{
    public const int MaxTools = 128;
    public const int MaxNameLength = 64;

    /// <summary>Each function's arguments compiled from its schema (every function, so each is checked), the grammar over the callable ones.</summary>
    /// <exception cref="InvalidRequestException">A schema that is unsupported, malformed, over a bound, or not of an object.</exception>
    public static JsonNode Compile(IReadOnlyList<ToolDefinition> tools, IReadOnlySet<string> callable, bool parallel)
    {
        var calls = new List<(byte[], JsonNode)>();
        for (var i = 0; i < tools.Count; i++)
        {
            var arguments = Arguments(tools[i].ParametersJson, $"tools[{i}].function.parameters");
            var name = tools[i].Name!;
            if (!callable.Contains(name)) continue;
            var rest = new SequenceNode([arguments, Text(ChatTemplate.ArgumentsClosing)]);
            calls.Add((Encoding.UTF8.GetBytes(name + ChatTemplate.ArgumentsOpening), rest));
        }
        var call = new SequenceNode([Text(ChatTemplate.ToolCallBegin + ChatTemplate.FunctionType + ChatTemplate.ToolSep), new KeyedChoiceNode(calls)]);
        var next = new SequenceNode([Text(ChatTemplate.CallSeparator), call]);
        var repeat = new RepeatNode(call, next, 1, parallel ? int.MaxValue : 1);
        return new SequenceNode([Text(ChatTemplate.ToolCallsBegin), repeat, Text(ChatTemplate.ToolCallsEnd)]);
    }

    private static LiteralNode Text(string text) => new([Encoding.UTF8.GetBytes(text)]);

    /// <summary>The arguments' grammar: an object of the schema; no schema is an empty parameter list (<c>{}</c>), as with OpenAI.</summary>
    private static JsonNode Arguments(string? parametersJson, string param)
    {
        if (parametersJson is null)
        {
            var empty = new ObjectNode([]);
            empty.Seal();
            return empty;
        }
        if (Encoding.UTF8.GetByteCount(parametersJson) > StructuredOutputs.MaxSchemaBytes)
            throw new InvalidRequestException(param, $"{param} is larger than {StructuredOutputs.MaxSchemaBytes} bytes; simplify it.");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(parametersJson, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException(param, $"{param} is not valid JSON: {e.Message}");
        }
        using (document)
        {
            var root = document.RootElement;
            var node = JsonSchemaCompiler.Compile(root, param);
            // {} (no keyword at all) is any object here: arguments are always an object.
            if (node is AnyValueNode && root.ValueKind == JsonValueKind.Object && !root.TryGetProperty("type", out _)) return AnyObjectNode.Instance;
            if (node is ObjectNode or AnyObjectNode) return node;
            throw new InvalidRequestException(param,
                $"{param} must be the schema of an object (arguments are a JSON object): send {{\"type\": \"object\", \"properties\": {{...}}}}.");
        }
    }
}
