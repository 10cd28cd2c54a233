using System.Text;
using System.Text.Json;
using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.Structured;

/// <summary>
/// A request's <c>response_format</c> as a face read it: <c>text</c>, <c>json_object</c> or
/// <c>json_schema</c> with the schema's JSON text. <see cref="Param"/> is where the face's client put
/// the schema (<c>response_format.json_schema.schema</c>, gRPC's <c>json_schema</c>), so refusals name it.
/// </summary>
/// <remarks><see cref="OptionsSent"/>: the face received the schema's options object (HTTP's <c>json_schema</c>), named <see cref="OptionsParam"/>.</remarks>
public sealed record ResponseFormat(string Type, string? Name = null, string? SchemaJson = null, bool? Strict = null,
    string Param = "response_format.json_schema.schema", string TypeParam = "response_format.type",
    bool OptionsSent = false, string OptionsParam = "response_format.json_schema")
{
    public static ResponseFormat Text { get; } = new("text");
}

/// <summary>
/// Compiles response formats over one tokenizer's vocabulary, once per normalised schema text
/// (bounded, <see cref="MaxCompiled"/>): thread-safe, shared by every request handler.
/// </summary>
public sealed class StructuredOutputs(TokenVocabulary vocabulary)
{
    public const int MaxCompiled = 64;
    public const int MaxSchemaBytes = 64 * 1024;

    private readonly Dictionary<string, OutputConstraint> _compiled = new(StringComparer.Ordinal);
    private readonly Queue<string> _order = new();
    private readonly Lock _lock = new();

    public TokenVocabulary Vocabulary { get; } = vocabulary;

    /// <summary>Compilations done (cache misses), for tests.</summary>
    public int Compilations { get; private set; }

    /// <summary>The constraint of <paramref name="format"/>; null for <c>text</c>.</summary>
    /// <exception cref="InvalidRequestException">An unknown type, a missing or malformed schema, an unsupported schema feature, a bound broken.</exception>
    public OutputConstraint? Compile(ResponseFormat format)
    {
        ArgumentNullException.ThrowIfNull(format);
        switch (format.Type)
        {
            case "text" or "json_object" when format.OptionsSent || format.SchemaJson is not null:
                var param = format.OptionsSent ? format.OptionsParam : format.Param;
                throw new InvalidRequestException(param, $"{param} is only read with type json_schema, got type '{format.Type}'; remove it or set {format.TypeParam} to \"json_schema\".");
            case "text":
                return null;
            case "json_object":
                return Cached("{\"type\":\"object\"}", "json_object", () => AnyObjectNode.Instance);
            case "json_schema":
                return Schema(format);
            default:
                throw new InvalidRequestException(format.TypeParam,
                    $"{format.TypeParam} '{format.Type}' is not one this server knows; send \"text\", \"json_object\" or \"json_schema\".", "unsupported_value");
        }
    }

    /// <summary>
    /// The grammar of a forced tool call (<see cref="ToolCallGrammar"/>) over the functions named in
    /// <paramref name="callable"/>, cached like a schema by the tools' text, the callable names and
    /// <paramref name="parallel"/>. Every function's parameters are compiled, so each is checked.
    /// </summary>
    /// <exception cref="InvalidRequestException">A function's parameters schema that is unsupported, malformed, over a bound, or not of an object.</exception>
    public OutputConstraint CompileToolCalls(IReadOnlyList<ToolDefinition> tools, IReadOnlySet<string> callable, bool parallel)
    {
        ArgumentNullException.ThrowIfNull(tools);
        ArgumentNullException.ThrowIfNull(callable);
        var key = new StringBuilder("tools:").Append(parallel ? "parallel:" : "single:");
        foreach (var name in callable.Order(StringComparer.Ordinal)) key.Append(JsonText.Quote(name)).Append(',');
        foreach (var tool in tools) key.Append('\n').Append(JsonText.Quote(tool.Name ?? "")).Append(':').Append(tool.ParametersJson is { } json ? Normalised(json) : "null");
        var description = $"tool calls of {string.Join(", ", callable.Order(StringComparer.Ordinal))}";
        return Cached(key.ToString(), description, () => ToolCallGrammar.Compile(tools, callable, parallel));
    }

    /// <summary>A schema's compact text for a cache key; text that does not parse is kept as sent (compiling it will refuse it).</summary>
    private static string Normalised(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 64 });
            return JsonText.Compact(document.RootElement);
        }
        catch (JsonException)
        {
            return json;
        }
    }

    private OutputConstraint Schema(ResponseFormat format)
    {
        var param = format.Param;
        if (format.Name is { } name && (name.Length is 0 or > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-')))
            throw new InvalidRequestException("response_format.json_schema.name",
                "response_format.json_schema.name must be 1 to 64 characters of a-z, A-Z, 0-9, _ and -.");
        if (format.SchemaJson is null)
            throw new InvalidRequestException(param, $"{param} is required with type json_schema; send the JSON schema the output must satisfy.");
        if (Encoding.UTF8.GetByteCount(format.SchemaJson) > MaxSchemaBytes)
            throw new InvalidRequestException(param, $"{param} is larger than {MaxSchemaBytes} bytes; simplify it.");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(format.SchemaJson, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException(param, $"{param} is not valid JSON: {e.Message}");
        }
        using (document)
        {
            var root = document.RootElement;
            var normalised = JsonText.Compact(root);
            var description = format.Name is { } schemaName ? $"json_schema '{schemaName}'" : "json_schema";
            return Cached(normalised, description, () => JsonSchemaCompiler.Compile(root, param));
        }
    }

    private OutputConstraint Cached(string key, string description, Func<JsonNode> compile)
    {
        lock (_lock)
        {
            if (_compiled.TryGetValue(key, out var hit)) return hit;
        }
        var constraint = new OutputConstraint(compile(), Vocabulary, description);
        lock (_lock)
        {
            Compilations++;
            if (_compiled.TryGetValue(key, out var raced)) return raced;
            if (_compiled.Count >= MaxCompiled) _compiled.Remove(_order.Dequeue());
            _compiled[key] = constraint;
            _order.Enqueue(key);
        }
        return constraint;
    }
}
