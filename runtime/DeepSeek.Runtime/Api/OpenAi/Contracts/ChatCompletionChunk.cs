using System.Text.Json.Serialization;

namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

internal sealed record ChatCompletionChunk(string Id, long Created, string Model, List<ChatCompletionChunk.ChunkChoice> Choices, Usage? Usage = null)
{
    public string Object => "chat.completion.chunk";

    internal sealed record ChunkChoice(
        int Index,
        Delta Delta,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] ChatLogprobs? Logprobs,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason);

    internal sealed record Delta(string? Role = null, string? Content = null);
}
