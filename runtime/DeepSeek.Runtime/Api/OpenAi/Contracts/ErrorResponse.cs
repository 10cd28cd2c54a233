using System.Text.Json.Serialization;

namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

/// <summary>OpenAI's error body: <c>{"error":{"message","type","param","code"}}</c>, with nulls written out as OpenAI does.</summary>
internal sealed record ErrorResponse(ErrorResponse.Body Error)
{
    internal sealed record Body(
        string Message,
        string Type,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Param,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Code);
}
