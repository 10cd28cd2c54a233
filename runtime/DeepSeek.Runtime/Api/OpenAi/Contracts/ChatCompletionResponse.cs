using System.Text.Json.Serialization;

namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

internal sealed record ChatCompletionResponse(string Id, long Created, string Model, List<ChatCompletionResponse.ChatChoice> Choices, Usage Usage)
{
    public string Object => "chat.completion";

    internal sealed record ChatChoice(
        int Index,
        AssistantMessage Message,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] ChatLogprobs? Logprobs,
        string FinishReason);

    internal sealed record AssistantMessage(string Role, string Content);
}
