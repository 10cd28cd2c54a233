using System.Text.Json.Serialization;

namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

// The OpenAI response bodies and stream chunks, written through OpenAiJsonContext (source-generated, trim-safe).

internal sealed record ChatCompletionResponse(string Id, long Created, string Model, List<ChatCompletionResponse.ChatChoice> Choices, Usage Usage)
{
    public string Object => "chat.completion";

    internal sealed record ChatChoice(
        int Index,
        AssistantMessage Message,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] ChatLogprobs? Logprobs,
        string FinishReason);

    /// <summary><c>content</c> is null when the turn is only calls; <c>tool_calls</c> is left out when there are none.</summary>
    internal sealed record AssistantMessage(
        string Role,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Content,
        List<ToolCall>? ToolCalls = null);

    internal sealed record ToolCall(string Id, FunctionCall Function)
    {
        public string Type => "function";
    }

    internal sealed record FunctionCall(string Name, string Arguments);
}

internal sealed record ChatCompletionChunk(string Id, long Created, string Model, List<ChatCompletionChunk.ChunkChoice> Choices, Usage? Usage = null)
{
    public string Object => "chat.completion.chunk";

    internal sealed record ChunkChoice(
        int Index,
        Delta Delta,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] ChatLogprobs? Logprobs,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason);

    internal sealed record Delta(string? Role = null, string? Content = null, List<ToolCallDelta>? ToolCalls = null);

    /// <summary>A piece of call <c>Index</c>: its first carries <c>id</c>, <c>type</c> and the function's name, later ones pieces of the arguments.</summary>
    internal sealed record ToolCallDelta(int Index, string? Id, string? Type, FunctionDelta Function);

    internal sealed record FunctionDelta(string? Name, string? Arguments);
}

internal sealed record ChatLogprobs(List<ChatLogprobs.TokenEntry> Content)
{
    internal sealed record TokenEntry(string Token, float Logprob, int[] Bytes, List<Alternative> TopLogprobs);

    internal sealed record Alternative(string Token, float Logprob, int[] Bytes);
}

/// <summary>Both the non-streamed response and each streamed chunk of <c>/v1/completions</c> (OpenAI uses one shape).</summary>
internal sealed record CompletionResponse(string Id, long Created, string Model, List<CompletionResponse.TextChoice> Choices, Usage? Usage)
{
    public string Object => "text_completion";

    internal sealed record TextChoice(
        int Index,
        string Text,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] CompletionLogprobs? Logprobs,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason);
}

/// <summary>The legacy completions API's parallel arrays, one entry per generated token.</summary>
internal sealed record CompletionLogprobs(List<string> Tokens, List<float> TokenLogprobs, List<Dictionary<string, float>> TopLogprobs, List<int> TextOffset);

internal sealed record EmbeddingResponse(List<EmbeddingResponse.Item> Data, string Model, EmbeddingResponse.EmbeddingUsage Usage)
{
    public string Object => "list";

    /// <summary><c>Embedding</c> is a <c>float[]</c>, or a base64 string of little-endian float32 values.</summary>
    internal sealed record Item(int Index, object Embedding)
    {
        public string Object => "embedding";
    }

    internal sealed record EmbeddingUsage(int PromptTokens, int TotalTokens);
}

internal sealed record ModelList(List<ModelList.Model> Data)
{
    public string Object => "list";

    /// <remarks><c>Parent</c>: for a LoRA adapter, the served model it runs on (vLLM's field); null for the model itself.</remarks>
    internal sealed record Model(string Id, long Created, string OwnedBy, int MaxModelLen, string Architecture, string? Parent = null)
    {
        public string Object => "model";
    }
}

internal sealed record Usage(int PromptTokens, int CompletionTokens, int TotalTokens, Usage.TokenDetails? PromptTokensDetails = null)
{
    internal sealed record TokenDetails(int CachedTokens);
}

/// <summary>OpenAI's error body: <c>{"error":{"message","type","param","code"}}</c>, with nulls written out as OpenAI does.</summary>
internal sealed record ErrorResponse(ErrorResponse.Body Error)
{
    internal sealed record Body(
        string Message,
        string Type,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Param,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Code);
}
