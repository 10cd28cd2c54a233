using System.Text.Json;
using System.Text.Json.Serialization;

namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

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
