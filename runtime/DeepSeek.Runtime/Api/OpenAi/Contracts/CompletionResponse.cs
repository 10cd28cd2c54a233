using System.Text.Json.Serialization;

namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

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
