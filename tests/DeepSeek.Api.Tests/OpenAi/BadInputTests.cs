using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using DeepSeek.Api.Tests.Backend;
using DeepSeek.Api.Tests.Infrastructure;

namespace DeepSeek.Api.Tests.OpenAi;

/// <summary>Each bad request gets its status and an OpenAI-shaped error, and the server keeps serving.</summary>
public sealed class BadInputTests : IAsyncLifetime
{
    private RunningServer _server = null!;

    public async Task InitializeAsync() => _server = await RunningServer.StartAsync(maxRequestBytes: 16 * 1024);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private const string Chat = "/v1/chat/completions";
    private const string Completions = "/v1/completions";
    private const string Hello = """[{"role":"user","content":"hi"}]""";

    public static TheoryData<string, string, string, int, string?> Cases() => new()
    {
        { "malformed JSON", Chat, """{"model":"deepseek-test","messages":""", 400, null },
        { "trailing garbage", Chat, """{"model":"deepseek-test","messages":[]} x""", 400, null },
        { "not an object", Chat, """[1,2]""", 400, null },
        { "wrong type", Chat, $$"""{"model":"deepseek-test","messages":{{Hello}},"temperature":"hot"}""", 400, "temperature" },
        { "wrong type in list", Completions, """{"model":"deepseek-test","prompt":[1,"a"]}""", 400, "prompt[1]" },
        { "huge integer", Chat, $$"""{"model":"deepseek-test","messages":{{Hello}},"max_tokens":1e30}""", 400, "max_tokens" },
        { "huge number", Chat, $$"""{"model":"deepseek-test","messages":{{Hello}},"temperature":1e300}""", 400, "temperature" },
        { "negative max_tokens", Chat, $$"""{"model":"deepseek-test","messages":{{Hello}},"max_tokens":-5}""", 400, "max_tokens" },
        { "negative n", Chat, $$"""{"model":"deepseek-test","messages":{{Hello}},"n":-1}""", 400, "n" },
        { "negative seed", Chat, $$"""{"model":"deepseek-test","messages":{{Hello}},"seed":-3}""", 400, "seed" },
        { "top_p zero", Chat, $$"""{"model":"deepseek-test","messages":{{Hello}},"top_p":0}""", 400, "top_p" },
        { "unknown field", Chat, $$"""{"model":"deepseek-test","messages":{{Hello}},"max_token":5}""", 400, "max_token" },
        { "unknown message field", Chat, """{"model":"deepseek-test","messages":[{"role":"user","content":"hi","tool_call_id":"x"}]}""", 400, "messages[0].tool_call_id" },
        { "empty messages", Chat, """{"model":"deepseek-test","messages":[]}""", 400, "messages" },
        { "missing messages", Chat, """{"model":"deepseek-test"}""", 400, "messages" },
        { "bad role", Chat, """{"model":"deepseek-test","messages":[{"role":"function","content":"x"}]}""", 400, "messages[0].role" },
        { "missing model", Chat, $$"""{"messages":{{Hello}}}""", 400, "model" },
        { "out-of-vocabulary id", Completions, """{"model":"deepseek-test","prompt":[1,2,99999]}""", 400, "prompt" },
        { "negative token id", Completions, """{"model":"deepseek-test","prompt":[-1]}""", 400, "prompt" },
        { "prompt beyond context", Completions, "{\"model\":\"deepseek-test\",\"prompt\":[" + string.Join(',', Enumerable.Repeat(1, TestBackend.Context)) + "]}", 400, "prompt" },
        { "max_tokens beyond context", Completions, """{"model":"deepseek-test","prompt":[1,2],"max_tokens":100000}""", 400, "max_tokens" },
        { "top_logprobs without logprobs", Chat, $$"""{"model":"deepseek-test","messages":{{Hello}},"top_logprobs":2}""", 400, "top_logprobs" },
        { "stream_options without stream", Chat, $$$"""{"model":"deepseek-test","messages":{{{Hello}}},"stream_options":{"include_usage":true}}""", 400, "stream_options" },
        { "oversized body", Completions, "{\"model\":\"deepseek-test\",\"prompt\":\"" + new string('x', 20 * 1024) + "\"}", 413, null },
        { "unknown model", Chat, $$"""{"model":"gpt-4","messages":{{Hello}}}""", 404, "model" },
        { "unknown route", "/v1/nothing-here", "{}", 404, null },
        { "empty embeddings input", "/v1/embeddings", """{"model":"deepseek-test","input":[]}""", 400, "input" },
        { "bad encoding_format", "/v1/embeddings", """{"model":"deepseek-test","input":"x","encoding_format":"hex"}""", 400, "encoding_format" },
        { "duplicate key", Chat, $$"""{"model":"deepseek-test","messages":{{Hello}},"n":1,"n":2}""", 400, "n" },
        { "duplicate message key", Chat, """{"model":"deepseek-test","messages":[{"role":"user","role":"system","content":"hi"}]}""", 400, "messages[0].role" },
        { "logit_bias with a bias", Chat, $$$"""{"model":"deepseek-test","messages":{{{Hello}}},"logit_bias":{"5":-100}}""", 400, "logit_bias" },
        { "response_format json_object", Chat, $$$"""{"model":"deepseek-test","messages":{{{Hello}}},"response_format":{"type":"json_object"}}""", 400, "response_format.type" },
        { "store true", Chat, $$"""{"model":"deepseek-test","messages":{{Hello}},"store":true}""", 400, "store" },
        { "service_tier flex", Chat, $$"""{"model":"deepseek-test","messages":{{Hello}},"service_tier":"flex"}""", 400, "service_tier" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Bad_request_gets_status_and_openai_error(string name, string path, string body, int status, string? param)
    {
        using var response = await _server.Http.PostAsync(new Uri(path, UriKind.Relative), new StringContent(body, Encoding.UTF8, "application/json"));
        await AssertOpenAiErrorAsync(response, status, param, name);
        await AssertStillServesAsync();
    }

    [Fact]
    public async Task Invalid_utf8_is_400()
    {
        var bytes = Encoding.UTF8.GetBytes("""{"model":"deepseek-test","prompt":"a?b"}""");
        bytes[Array.IndexOf(bytes, (byte)'?')] = 0xFF;
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await _server.Http.PostAsync(new Uri(Completions, UriKind.Relative), content);
        var error = await AssertOpenAiErrorAsync(response, 400, null, "invalid UTF-8");
        Assert.Contains("UTF-8", error.GetProperty("message").GetString());
        await AssertStillServesAsync();
    }

    [Theory]
    [InlineData(null)]
    [InlineData("Bearer wrong-key")]
    [InlineData("Basic dGVzdA==")]
    public async Task Missing_or_wrong_key_is_401_and_probes_stay_open(string? authorization)
    {
        using var client = new HttpClient { BaseAddress = new Uri(_server.HttpUrl) };
        if (authorization is not null) client.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", authorization);
        using var response = await client.GetAsync(new Uri("/v1/models", UriKind.Relative));
        var error = await AssertOpenAiErrorAsync(response, 401, null, "auth");
        Assert.Equal("invalid_api_key", error.GetProperty("code").GetString());
        foreach (var probe in new[] { "/health", "/ready", "/metrics" })
        {
            using var open = await client.GetAsync(new Uri(probe, UriKind.Relative));
            Assert.Equal(HttpStatusCode.OK, open.StatusCode);
        }
    }

    private async Task AssertStillServesAsync()
    {
        using var response = await _server.Http.PostAsync(new Uri(Chat, UriKind.Relative), new StringContent(
            $$"""{"model":"deepseek-test","messages":{{Hello}},"max_tokens":3}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    internal static async Task<JsonElement> AssertOpenAiErrorAsync(HttpResponseMessage response, int status, string? param, string because)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == status, $"{because}: expected {status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()), because);
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("type").GetString()), because);
        Assert.True(error.TryGetProperty("code", out _), because);
        var actualParam = error.GetProperty("param");
        if (param is null) Assert.True(actualParam.ValueKind is JsonValueKind.Null or JsonValueKind.String, because);
        else Assert.Equal(param, actualParam.GetString());
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
        return error;
    }
}
