using System.Text.Json.Serialization;
using DeepSeek.Gateway.Audit;

namespace DeepSeek.Gateway.Api;

/// <summary>The JSON the gateway writes itself, snake_case as OpenAI spells it.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ModelCard))]
[JsonSerializable(typeof(VersionInfo))]
[JsonSerializable(typeof(ProbeStatus))]
[JsonSerializable(typeof(AuditEntry))]
internal sealed partial class GatewayJsonContext : JsonSerializerContext;

internal sealed record ModelCard(string Id, string Object, long Created, string OwnedBy);

internal sealed record ModelList(string Object, IReadOnlyList<ModelCard> Data);

internal sealed record VersionInfo(string Gateway, string Api);

internal sealed record ProbeStatus(string Status);
