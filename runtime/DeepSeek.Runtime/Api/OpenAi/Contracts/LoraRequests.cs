using System.Text.Json;
using System.Text.Json.Serialization;

namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

/// <summary>vLLM's <c>POST /v1/load_lora_adapter</c> body.</summary>
internal sealed class LoadLoraAdapterRequest
{
    public string? LoraName { get; set; }
    public string? LoraPath { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? UnknownFields { get; set; }
}

/// <summary>vLLM's <c>POST /v1/unload_lora_adapter</c> body (its <c>lora_int_id</c> is accepted and unused: names identify adapters here).</summary>
internal sealed class UnloadLoraAdapterRequest
{
    public string? LoraName { get; set; }
    public long? LoraIntId { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? UnknownFields { get; set; }
}
