using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace DeepSeek.Gateway.Tests.Infrastructure;

/// <summary>Plain HTTP calls of the tests: a JSON POST with an optional key, and reading an OpenAI-shaped error.</summary>
internal static class Requests
{
    public static HttpRequestMessage Post(string path, string json, string? key = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return request;
    }

    public static string Chat(string model, string text = "hello", int maxTokens = 2, string extra = "") =>
        $$"""{"model":"{{model}}","messages":[{"role":"user","content":"{{text}}"}],"max_tokens":{{maxTokens}}{{extra}}}""";

    public static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : "";

    /// <summary>The <c>error</c> object of an OpenAI-shaped error body; fails when the body is not one.</summary>
    public static async Task<JsonElement> ErrorAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        using var document = JsonDocument.Parse(text);
        var error = document.RootElement.GetProperty("error");
        Assert.Equal(JsonValueKind.String, error.GetProperty("message").ValueKind);
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
        Assert.True(error.TryGetProperty("param", out _), text);
        Assert.True(error.TryGetProperty("code", out _), text);
        return error.Clone();
    }
}
