using System.Text;
using System.Text.Json;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Structured;
using DeepSeek.Runtime.Api.OpenAi.Contracts;

namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary>Pure readers for the OpenAI fields that accept several JSON shapes (stop, prompt, input, message content).</summary>
public static class OpenAiInputs
{
    /// <summary>One prompt: either text to tokenize or token ids as sent.</summary>
    public readonly record struct PromptInput(string? Text, int[]? TokenIds);

    /// <summary><c>stop</c>: absent, null, a string, or a list of strings.</summary>
    public static IReadOnlyList<string> Stop(JsonElement stop) => stop.ValueKind switch
    {
        JsonValueKind.Undefined or JsonValueKind.Null => [],
        JsonValueKind.String => [stop.GetString()!],
        JsonValueKind.Array => [.. stop.EnumerateArray().Select((item, i) => item.ValueKind == JsonValueKind.String
            ? item.GetString()!
            : throw Invalid($"stop[{i}]", "stop must be a string or a list of strings."))],
        _ => throw Invalid("stop", "stop must be a string or a list of strings."),
    };

    /// <summary>
    /// <c>prompt</c> (completions) or <c>input</c> (embeddings): a string, a list of strings, a list of
    /// token ids, or a list of token-id lists.
    /// </summary>
    public static IReadOnlyList<PromptInput> Prompts(JsonElement value, string param)
    {
        var shapes = $"{param} must be a string, a list of strings, a list of token ids, or a list of token-id lists.";
        switch (value.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null:
                throw Invalid(param, $"{param} is required; {shapes}");
            case JsonValueKind.String:
                return [new PromptInput(value.GetString(), null)];
            case JsonValueKind.Array:
                break;
            default:
                throw Invalid(param, shapes);
        }

        var items = value.EnumerateArray().ToList();
        if (items.Count == 0) throw Invalid(param, $"{param} is an empty list; send at least one input.");
        var first = items[0].ValueKind;
        if (first == JsonValueKind.Number) return [new PromptInput(null, TokenIds(value, param))];
        var prompts = new List<PromptInput>(items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            var item = items[i];
            if (item.ValueKind != first) throw Invalid($"{param}[{i}]", $"{param} mixes shapes; {shapes}");
            prompts.Add(item.ValueKind switch
            {
                JsonValueKind.String => new PromptInput(item.GetString(), null),
                JsonValueKind.Array => new PromptInput(null, TokenIds(item, $"{param}[{i}]")),
                _ => throw Invalid($"{param}[{i}]", shapes),
            });
        }
        return prompts;
    }

    /// <summary>Chat message content: a string or a list of text parts (joined without separators).</summary>
    public static string MessageContent(JsonElement content, string param)
    {
        switch (content.ValueKind)
        {
            case JsonValueKind.String:
                return content.GetString()!;
            case JsonValueKind.Array:
                var text = new StringBuilder();
                var i = 0;
                foreach (var part in content.EnumerateArray())
                {
                    if (part.ValueKind != JsonValueKind.Object
                        || !part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "text"
                        || !part.TryGetProperty("text", out var partText) || partText.ValueKind != JsonValueKind.String)
                        throw Invalid($"{param}[{i}]", $"{param}[{i}] must be a text part {{\"type\": \"text\", \"text\": \"...\"}}; this model reads text only.");
                    text.Append(partText.GetString());
                    i++;
                }
                return text.ToString();
            case JsonValueKind.Undefined or JsonValueKind.Null:
                throw Invalid(param, $"{param} is required; send the message text as a string.");
            default:
                throw Invalid(param, $"{param} must be a string or a list of text parts.");
        }
    }

    /// <summary>The chat template's role name; OpenAI's <c>developer</c> is a system message.</summary>
    public static string Role(string? role, string param) => role switch
    {
        "system" or "developer" => "system",
        "user" => "user",
        "assistant" => "assistant",
        "tool" => "tool",
        null => throw Invalid(param, $"{param} is required; use \"system\", \"user\", \"assistant\" or \"tool\"."),
        _ => throw Invalid(param, $"{param} '{role}' is not supported; use \"system\", \"user\", \"assistant\" or \"tool\"."),
    };

    /// <summary><c>tools</c> as read, for <see cref="RequestValidator.CheckTools"/>: each function's type, name, description and parameters' text; null when none was sent.</summary>
    /// <exception cref="InvalidRequestException">A tool that is null or has no <c>function</c>, or an unknown member.</exception>
    internal static IReadOnlyList<ToolDefinition>? Tools(ChatCompletionRequest body)
    {
        if (body.Tools is not { } tools) return null;
        var result = new List<ToolDefinition>(tools.Count);
        for (var i = 0; i < tools.Count; i++)
        {
            var tool = tools[i] ?? throw Invalid($"tools[{i}]", $"tools[{i}] is null; send {{\"type\": \"function\", \"function\": {{\"name\": ..., \"parameters\": {{...}}}}}}.");
            RejectUnknown(tool.UnknownFields, $"tools[{i}].");
            var function = tool.Function
                ?? throw Invalid($"tools[{i}].function", $"tools[{i}].function is required; send {{\"name\": ..., \"description\": ..., \"parameters\": {{...}}}}.");
            RejectUnknown(function.UnknownFields, $"tools[{i}].function.");
            var parameters = function.Parameters.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null ? null : function.Parameters.GetRawText();
            result.Add(new ToolDefinition(tool.Type, function.Name, function.Description, parameters));
        }
        return result;
    }

    /// <summary><c>tool_choice</c> as read: a mode, or the named function of <c>{"type": "function", "function": {"name": ...}}</c>; null when none was sent.</summary>
    /// <exception cref="InvalidRequestException">Another shape, or an unknown member.</exception>
    internal static ToolChoice? ToolChoiceOf(JsonElement choice)
    {
        const string shapes = "tool_choice must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}.";
        switch (choice.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null:
                return null;
            case JsonValueKind.String:
                return new ToolChoice(choice.GetString());
            case JsonValueKind.Object:
                break;
            default:
                throw Invalid("tool_choice", shapes);
        }
        foreach (var member in choice.EnumerateObject())
            if (member.Name is not ("type" or "function"))
                throw Invalid($"tool_choice.{member.Name}", $"Unknown field 'tool_choice.{member.Name}'; {shapes}");
        if (!choice.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "function")
            throw Invalid("tool_choice.type", $"tool_choice.type must be \"function\"; {shapes}");
        if (!choice.TryGetProperty("function", out var function) || function.ValueKind != JsonValueKind.Object
            || !function.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
            throw Invalid("tool_choice.function.name", $"tool_choice.function.name is required; {shapes}");
        foreach (var member in function.EnumerateObject())
            if (member.Name != "name")
                throw Invalid($"tool_choice.function.{member.Name}", $"Unknown field 'tool_choice.function.{member.Name}'; {shapes}");
        return new ToolChoice(null, name.GetString());
    }

    /// <summary>
    /// The sampling fields both generation endpoints share, as the engine's parameters; the engine's
    /// <see cref="RequestValidator"/> judges them.
    /// </summary>
    /// <exception cref="InvalidRequestException">A field that has no engine value at all (a negative seed, stream_options without stream).</exception>
    internal static SamplingParameters Sampling(GenerationRequestBody body, int? maxTokens, int? logprobs)
    {
        if (body.Seed is < 0) throw Invalid("seed", $"seed must be between 0 and {long.MaxValue}, not {body.Seed}.");
        RejectUnknown(body.StreamOptions?.UnknownFields, "stream_options.");
        if (body.StreamOptions is not null && body.Stream != true)
            throw Invalid("stream_options", "stream_options is only allowed with \"stream\": true; remove it or set stream.");
        var topK = body.TopK ?? 0;
        return new SamplingParameters
        {
            Temperature = (float)(body.Temperature ?? 1),
            TopP = (float)(body.TopP ?? 1),
            // vLLM spells "no top-k" as -1; 0 means the same to the engine.
            TopK = topK == -1 ? 0 : topK,
            Seed = body.Seed is { } seed ? (ulong)seed : null,
            PresencePenalty = (float)(body.PresencePenalty ?? 0),
            FrequencyPenalty = (float)(body.FrequencyPenalty ?? 0),
            RepetitionPenalty = (float)(body.RepetitionPenalty ?? 1),
            Stop = Stop(body.Stop),
            StopTokenIds = body.StopTokenIds ?? [],
            MinTokens = body.MinTokens ?? 0,
            MaxTokens = maxTokens,
            Logprobs = logprobs,
        };
    }

    /// <summary>
    /// The options common clients add that this server implements only at their defaults, judged by
    /// <see cref="RequestValidator.CheckDefaultOnly"/>.
    /// </summary>
    /// <exception cref="InvalidRequestException">An option is at a value not implemented.</exception>
    internal static void CheckDefaultOnly(GenerationRequestBody body)
    {
        var chat = body as ChatCompletionRequest;
        RequestValidator.CheckDefaultOnly(new DefaultOnlyOptions
        {
            LogitBiasCount = body.LogitBias?.Count ?? 0,
            Store = chat?.Store,
            ServiceTier = chat?.ServiceTier,
        });
    }

    /// <summary>
    /// <c>response_format</c> as read, for <see cref="RequestValidator.CheckResponseFormat"/>: its type,
    /// and with <c>json_schema</c> the schema's text; null when none was sent.
    /// </summary>
    /// <exception cref="InvalidRequestException"><c>response_format</c> has no type, or it or <c>json_schema</c> has an unknown member.</exception>
    internal static ResponseFormat? ResponseFormat(ChatCompletionRequest body)
    {
        if (body.ResponseFormat is not { } format) return null;
        if (format.Type is null)
            throw Invalid("response_format.type", "response_format.type is required; send {\"type\": \"text\"}, {\"type\": \"json_object\"} or {\"type\": \"json_schema\", \"json_schema\": {...}}, or remove response_format.");
        RejectUnknown(format.UnknownFields, "response_format.");
        var schema = format.JsonSchema;
        RejectUnknown(schema?.UnknownFields, "response_format.json_schema.");
        var text = schema is null || schema.Schema.ValueKind == JsonValueKind.Undefined ? null : schema.Schema.GetRawText();
        return new ResponseFormat(format.Type, schema?.Name, text, schema?.Strict, OptionsSent: schema is not null);
    }

    /// <summary>Rejects fields this server does not implement, naming the first one.</summary>
    public static void RejectUnknown(Dictionary<string, JsonElement>? unknown, string prefix = "")
    {
        if (unknown is not { Count: > 0 }) return;
        var name = prefix + unknown.Keys.First();
        throw Invalid(name, $"Unknown field '{name}'; remove it (docs/api.md lists the fields this server accepts).");
    }

    private static int[] TokenIds(JsonElement array, string param)
    {
        var ids = new int[array.GetArrayLength()];
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out ids[i]))
                throw Invalid($"{param}[{i}]", $"{param}[{i}] must be an integer token id.");
            i++;
        }
        if (ids.Length == 0) throw Invalid(param, $"{param} is an empty list of token ids; send at least one.");
        return ids;
    }

    private static InvalidRequestException Invalid(string param, string message) => new(param, message);
}
