using System.Text.Json;
using System.Text.Json.Serialization;

namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

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
