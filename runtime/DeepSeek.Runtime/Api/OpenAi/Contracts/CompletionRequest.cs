using System.Text.Json;

namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

internal sealed class CompletionRequest : GenerationRequestBody
{
    /// <summary>Text, a list of texts, a list of token ids, or a list of token-id lists.</summary>
    public JsonElement Prompt { get; set; }
    /// <summary>The legacy API's number of alternatives per token (0 = only the chosen token's).</summary>
    public int? Logprobs { get; set; }
}
