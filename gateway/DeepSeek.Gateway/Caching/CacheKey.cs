using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace DeepSeek.Gateway.Caching;

/// <summary>Which requests may be answered from the exact-response cache, and under what key: pure functions of the body.</summary>
internal static class CacheKey
{
    /// <summary>
    /// Deterministic: <c>temperature</c> 0 (greedy) or a <c>seed</c> (the runtime's sampling is reproducible
    /// under one). Streamed or not, each its own entry (<c>stream</c> is part of the body, so of the key): a
    /// stream is replayed as the events it was. Embeddings have neither and are left to the runtime.
    /// </summary>
    public static bool IsCacheable(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object) return false;
        var greedy = body.TryGetProperty("temperature", out var temperature) && temperature.ValueKind == JsonValueKind.Number && temperature.GetDouble() == 0;
        var seeded = body.TryGetProperty("seed", out var seed) && seed.ValueKind == JsonValueKind.Number;
        return greedy || seeded;
    }

    /// <summary>
    /// SHA-256 hex over the caller's scope (its key id: one key's answers are never served to another),
    /// the path, and the body normalised (properties sorted, no whitespace) so that the same request spelled
    /// differently shares one entry.
    /// </summary>
    public static string For(string scope, string path, JsonElement body)
    {
        ArgumentNullException.ThrowIfNull(scope);
        ArgumentNullException.ThrowIfNull(path);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            writer.WriteStringValue(scope);
            writer.WriteStringValue(path);
            WriteNormalised(writer, body);
            writer.WriteEndArray();
        }
        return Convert.ToHexStringLower(SHA256.HashData(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)));
    }

    /// <summary>
    /// Whether an answer may be kept: a JSON body as it is; an event stream only when it ran to its
    /// <c>data: [DONE]</c> and carried no error event (a stream cut short or failed is never replayed).
    /// </summary>
    public static bool IsKeepable(bool streamed, ReadOnlySpan<byte> body)
    {
        if (!streamed) return true;
        var done = "data: [DONE]"u8;
        var end = body.TrimEnd("\r\n"u8);
        return end.EndsWith(done) && body.IndexOf("data: {\"error\""u8) < 0;
    }

    /// <summary>Canonical JSON: object properties in ordinal order, numbers by value (<c>0</c>, <c>0.0</c> and <c>0e0</c> alike), the rest as sent.</summary>
    public static string Normalise(JsonElement body)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer)) WriteNormalised(writer, body);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteNormalised(Utf8JsonWriter writer, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                writer.WriteStartObject();
                foreach (var property in value.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    writer.WritePropertyName(property.Name);
                    WriteNormalised(writer, property.Value);
                }
                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in value.EnumerateArray()) WriteNormalised(writer, item);
                writer.WriteEndArray();
                break;
            case JsonValueKind.Number when value.TryGetInt64(out var integer):
                writer.WriteNumberValue(integer);
                break;
            case JsonValueKind.Number:
                writer.WriteNumberValue(value.GetDouble());
                break;
            default:
                value.WriteTo(writer);
                break;
        }
    }
}
