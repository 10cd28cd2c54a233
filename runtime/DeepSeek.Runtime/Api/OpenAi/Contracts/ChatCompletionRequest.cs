using System.Text.Json;
using System.Text.Json.Serialization;

namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

internal sealed class ChatCompletionRequest : GenerationRequestBody
{
    public List<RequestMessage?>? Messages { get; set; }
    public int? MaxCompletionTokens { get; set; }
    public bool? Logprobs { get; set; }
    public int? TopLogprobs { get; set; }

    internal sealed class RequestMessage
    {
        public string? Role { get; set; }
        /// <summary>A string, or a list of <c>{"type":"text","text":...}</c> parts.</summary>
        public JsonElement Content { get; set; }
        public string? Name { get; set; }

        [JsonExtensionData]
        public Dictionary<string, JsonElement>? UnknownFields { get; set; }
    }
}
