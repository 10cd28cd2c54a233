using System.Text.Json.Serialization;
using System.Text.Json;

namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

// The OpenAI request bodies as this server reads them: unknown fields land in UnknownFields and are rejected by name.

/// <summary>Fields that <c>/v1/chat/completions</c> and <c>/v1/completions</c> share (OpenAI's plus vLLM's extensions).</summary>
internal abstract class GenerationRequestBody
{
    public string? Model { get; set; }
    public double? Temperature { get; set; }
    public double? TopP { get; set; }
    public int? MaxTokens { get; set; }
    /// <summary>A string or a list of strings.</summary>
    public JsonElement Stop { get; set; }
    public long? Seed { get; set; }
    public int? N { get; set; }
    public double? PresencePenalty { get; set; }
    public double? FrequencyPenalty { get; set; }
    public string? User { get; set; }
    public bool? Stream { get; set; }
    public StreamOptionsBody? StreamOptions { get; set; }
    public int? TopK { get; set; }
    public double? RepetitionPenalty { get; set; }
    public List<int>? StopTokenIds { get; set; }
    public int? MinTokens { get; set; }
    public bool? ReturnTokensAsTokenIds { get; set; }
    /// <summary>Token id to bias; only null or <c>{}</c> is served (<see cref="DeepSeek.Engine.Requests.DefaultOnlyOptions"/>).</summary>
    public Dictionary<string, double>? LogitBias { get; set; }

    /// <summary>Fields this server does not know; rejected by name so typos do not pass silently.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? UnknownFields { get; set; }

    internal sealed class StreamOptionsBody
    {
        public bool? IncludeUsage { get; set; }

        [JsonExtensionData]
        public Dictionary<string, JsonElement>? UnknownFields { get; set; }
    }
}

internal sealed class ChatCompletionRequest : GenerationRequestBody
{
    public List<RequestMessage?>? Messages { get; set; }
    public int? MaxCompletionTokens { get; set; }
    public bool? Logprobs { get; set; }
    public int? TopLogprobs { get; set; }
    /// <summary><c>text</c>, <c>json_object</c> or <c>json_schema</c>: read here, judged and compiled by the engine's validator.</summary>
    public ResponseFormatBody? ResponseFormat { get; set; }
    /// <summary>Functions the model may call: read here, judged and compiled by the engine's validator.</summary>
    public List<ToolBody?>? Tools { get; set; }
    /// <summary><c>"none"</c>, <c>"auto"</c>, <c>"required"</c> or <c>{"type": "function", "function": {"name": ...}}</c>.</summary>
    public JsonElement ToolChoice { get; set; }
    /// <summary>Whether one turn may make several calls (default true); without tools it changes nothing.</summary>
    public bool? ParallelToolCalls { get; set; }
    /// <summary>Only <c>auto</c> or <c>default</c>: this server has one tier.</summary>
    public string? ServiceTier { get; set; }
    /// <summary>Only false: nothing is stored for later retrieval.</summary>
    public bool? Store { get; set; }
    /// <summary>Any names and strings: OpenAI keeps them with stored completions, which this server does not offer, so they change nothing.</summary>
    public Dictionary<string, string>? Metadata { get; set; }

    internal sealed class ResponseFormatBody
    {
        public string? Type { get; set; }
        public JsonSchemaBody? JsonSchema { get; set; }

        [JsonExtensionData]
        public Dictionary<string, JsonElement>? UnknownFields { get; set; }
    }

    internal sealed class JsonSchemaBody
    {
        public string? Name { get; set; }
        public string? Description { get; set; }
        /// <summary>The schema as sent; its text goes to the engine, which compiles it.</summary>
        public JsonElement Schema { get; set; }
        /// <summary>Output always follows the schema exactly; <c>false</c> is served the same way.</summary>
        public bool? Strict { get; set; }

        [JsonExtensionData]
        public Dictionary<string, JsonElement>? UnknownFields { get; set; }
    }

    internal sealed class RequestMessage
    {
        public string? Role { get; set; }
        /// <summary>A string, or a list of <c>{"type":"text","text":...}</c> parts; may be null in an assistant message with tool calls.</summary>
        public JsonElement Content { get; set; }
        public string? Name { get; set; }
        /// <summary>An assistant's calls, to be written back into the template.</summary>
        public List<ToolCallBody?>? ToolCalls { get; set; }
        /// <summary>A tool message's call: required, and one of the preceding assistant's calls.</summary>
        public string? ToolCallId { get; set; }

        [JsonExtensionData]
        public Dictionary<string, JsonElement>? UnknownFields { get; set; }
    }

    internal sealed class ToolBody
    {
        public string? Type { get; set; }
        public FunctionBody? Function { get; set; }

        [JsonExtensionData]
        public Dictionary<string, JsonElement>? UnknownFields { get; set; }
    }

    internal sealed class FunctionBody
    {
        public string? Name { get; set; }
        public string? Description { get; set; }
        /// <summary>A JSON schema of an object; its text goes to the engine, which compiles it.</summary>
        public JsonElement Parameters { get; set; }
        /// <summary>Forced calls always follow the schema; free ones are the model's: either value is served the same way.</summary>
        public bool? Strict { get; set; }

        [JsonExtensionData]
        public Dictionary<string, JsonElement>? UnknownFields { get; set; }
    }

    internal sealed class ToolCallBody
    {
        public string? Id { get; set; }
        public string? Type { get; set; }
        public CalledFunctionBody? Function { get; set; }

        [JsonExtensionData]
        public Dictionary<string, JsonElement>? UnknownFields { get; set; }
    }

    internal sealed class CalledFunctionBody
    {
        public string? Name { get; set; }
        public string? Arguments { get; set; }

        [JsonExtensionData]
        public Dictionary<string, JsonElement>? UnknownFields { get; set; }
    }
}

internal sealed class CompletionRequest : GenerationRequestBody
{
    /// <summary>Text, a list of texts, a list of token ids, or a list of token-id lists.</summary>
    public JsonElement Prompt { get; set; }
    /// <summary>The legacy API's number of alternatives per token (0 = only the chosen token's).</summary>
    public int? Logprobs { get; set; }
}

internal sealed class EmbeddingRequest
{
    public string? Model { get; set; }
    /// <summary>Text, a list of texts, a list of token ids, or a list of token-id lists.</summary>
    public JsonElement Input { get; set; }
    public string? EncodingFormat { get; set; }
    public int? Dimensions { get; set; }
    public string? User { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? UnknownFields { get; set; }
}
