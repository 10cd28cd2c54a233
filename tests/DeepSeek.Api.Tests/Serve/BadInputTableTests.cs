using System.Net;
using System.Text;
using System.Text.Json;
using DeepSeek.Api.Tests.Infrastructure;

namespace DeepSeek.Api.Tests.Serve;

/// <summary>
/// What a hostile client can send, against one real <c>serve</c> process: wrong types, sizes,
/// encodings (lone surrogates, invalid UTF-8, other charsets), nesting, limits, content types,
/// authorization headers, Host headers, both listeners, HTTP/1.1 and h2c. Each row names the status
/// and OpenAI error it must get, and after each the server still serves a normal request.
/// </summary>
public sealed class BadInputTableTests(HardenedServe shared) : IClassFixture<HardenedServe>
{
    private const string Model = ServeProcess.ModelName;
    private const string Chat = "/v1/chat/completions";
    private const string Completions = "/v1/completions";
    private const string Embeddings = "/v1/embeddings";
    private const string Hello = """[{"role":"user","content":"hi"}]""";
    private static readonly string Bearer = "Bearer " + HardenedServe.Key;

    /// <summary>Expected status 0: the listener does not speak that protocol and gives no HTTP answer.</summary>
    public sealed record Row(string Name, WireRequest Request, int Status, string? Param = null, string? Code = null)
    {
        public override string ToString() => Name;
    }

    private static WireRequest ChatBody(string fields) => WireRequest.Post(Chat, $$"""{"model":"{{Model}}","messages":{{Hello}},{{fields}}}""") with { Authorization = Bearer };

    private static WireRequest CompletionBody(string fields) => WireRequest.Post(Completions, $$"""{"model":"{{Model}}",{{fields}}}""") with { Authorization = Bearer };

    private static WireRequest Raw(string path, byte[] body, string? contentType = "application/json") =>
        new("POST", path, body) { Authorization = Bearer, ContentType = contentType };

    public static TheoryData<Row> Rows()
    {
        var deep = new string('[', 100) + new string(']', 100);
        var invalidUtf8 = Encoding.UTF8.GetBytes($$"""{"model":"{{Model}}","prompt":"a?b"}""");
        invalidUtf8[Array.IndexOf(invalidUtf8, (byte)'?')] = 0xFF;
        var utf16 = Encoding.Unicode.GetBytes($$"""{"model":"{{Model}}","prompt":"hi"}""");
        var rows = new List<Row>
        {
            // Types.
            new("temperature as a string", ChatBody("\"temperature\":\"hot\""), 400, "temperature"),
            new("max_tokens as a fraction", ChatBody("\"max_tokens\":1.5"), 400, "max_tokens"),
            new("messages as an object", WireRequest.Post(Chat, $$$"""{"model":"{{{Model}}}","messages":{"role":"user"}}""") with { Authorization = Bearer }, 400, "messages"),
            new("prompt as a boolean", CompletionBody("\"prompt\":true"), 400, "prompt"),
            new("stop as a number", CompletionBody("\"prompt\":\"hi\",\"stop\":7"), 400, "stop"),
            new("stop list with a number", CompletionBody("\"prompt\":\"hi\",\"stop\":[\"a\",7]"), 400, "stop[1]"),
            new("n as a string", ChatBody("\"n\":\"two\""), 400, "n"),
            new("stream as a string", ChatBody("\"stream\":\"yes\""), 400, "stream"),
            new("body is a list", Raw(Chat, "[1,2]"u8.ToArray()), 400),
            new("body is null", Raw(Chat, "null"u8.ToArray()), 400),
            new("negative seed", ChatBody("\"seed\":-3"), 400, "seed"),
            new("completions logprobs as a boolean", CompletionBody("\"prompt\":\"hi\",\"logprobs\":true"), 400, "logprobs"),
            new("huge number", ChatBody("\"temperature\":1e300"), 400, "temperature"),
            new("unknown field", ChatBody("\"max_token\":5"), 400, "max_token"),
            new("token id as a string", CompletionBody("\"prompt\":[1,\"2\"]"), 400, "prompt[1]"),
            // Sizes and limits.
            new("body over --max-request-bytes", CompletionBody($"\"prompt\":\"{new string('x', HardenedServe.MaxRequestBytes)}\""), 413, Code: "request_too_large"),
            new("text that cannot fit the context, refused before tokenizing", CompletionBody($"\"prompt\":\"{new string('x', 30_000)}\""), 400, "prompt", "context_length_exceeded"),
            new("n beyond what the queue can ever hold", ChatBody("\"n\":5"), 400, "n"),
            new("n of zero", ChatBody("\"n\":0"), 400, "n"),
            new("max_tokens beyond the context", CompletionBody("\"prompt\":[1,2],\"max_tokens\":100000"), 400, "max_tokens", "context_length_exceeded"),
            new("prompt ids beyond the context", CompletionBody("\"prompt\":[" + string.Join(',', Enumerable.Repeat(5, 256)) + "]"), 400, "prompt", "context_length_exceeded"),
            new("17 stop strings", CompletionBody("\"prompt\":\"hi\",\"stop\":[" + string.Join(',', Enumerable.Range(0, 17).Select(i => $"\"s{i}\"")) + "]"), 400, "stop"),
            new("a 300-character stop string", CompletionBody($"\"prompt\":\"hi\",\"stop\":\"{new string('s', 300)}\""), 400, "stop"),
            new("top_logprobs above 20", ChatBody("\"logprobs\":true,\"top_logprobs\":21"), 400, "top_logprobs"),
            new("repetition_penalty above 2", ChatBody("\"repetition_penalty\":3"), 400, "repetition_penalty"),
            new("top_k beyond the vocabulary", ChatBody("\"top_k\":999999"), 400, "top_k"),
            new("stop_token_ids beyond the vocabulary", ChatBody("\"stop_token_ids\":[999999]"), 400, "stop_token_ids"),
            new("prompt id beyond the vocabulary", CompletionBody("\"prompt\":[1,999999]"), 400, "prompt"),
            new("empty prompt list", CompletionBody("\"prompt\":[]"), 400, "prompt"),
            new("min_tokens above max_tokens", ChatBody("\"max_tokens\":2,\"min_tokens\":5"), 400, "min_tokens"),
            new("65 embedding inputs", WireRequest.Post(Embeddings, $$"""{"model":"{{Model}}","input":[{{string.Join(',', Enumerable.Repeat("\"a\"", 65))}}]}""") with { Authorization = Bearer }, 400, "input"),
            // Encodings.
            new("lone surrogate in message content", WireRequest.Post(Chat, $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"a\ud800b"}]}""") with { Authorization = Bearer }, 400, "content", "invalid_unicode"),
            new("lone surrogate in stop", ChatBody("\"stop\":\"x\\udc00\""), 400, "stop", "invalid_unicode"),
            new("lone surrogate in prompt", CompletionBody("\"prompt\":\"a\\ud800b\""), 400, "prompt", "invalid_unicode"),
            new("lone surrogate in embeddings input", WireRequest.Post(Embeddings, $$"""{"model":"{{Model}}","input":["ok","\udfff"]}""") with { Authorization = Bearer }, 400, "input", "invalid_unicode"),
            new("lone surrogate in model", WireRequest.Post(Chat, """{"model":"\ud800","messages":[{"role":"user","content":"hi"}]}""") with { Authorization = Bearer }, 400, "model", "invalid_unicode"),
            new("lone surrogate in a field name", ChatBody("\"\\ud800\":1"), 400, Code: "invalid_unicode"),
            new("invalid UTF-8 bytes", Raw(Completions, invalidUtf8), 400),
            new("UTF-16 body declared as such", Raw(Completions, utf16, "application/json; charset=utf-16"), 415, Code: "unsupported_media_type"),
            new("malformed JSON", Raw(Chat, Encoding.UTF8.GetBytes($$"""{"model":"{{Model}}","messages":""")), 400),
            // Nesting.
            new("100 levels of nesting", Raw(Chat, Encoding.UTF8.GetBytes($$"""{"model":"{{Model}}","messages":{{deep}}}""")), 400),
            new("content part that is not text", WireRequest.Post(Chat, $$$"""{"model":"{{{Model}}}","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}""") with { Authorization = Bearer }, 400, "messages[0].content[0]"),
            // Content types.
            new("text/plain body", ChatBody("\"max_tokens\":1") with { ContentType = "text/plain" }, 415, Code: "unsupported_media_type"),
            new("no Content-Type", ChatBody("\"max_tokens\":1") with { ContentType = null }, 415, Code: "unsupported_media_type"),
            new("form-encoded body", ChatBody("\"max_tokens\":1") with { ContentType = "application/x-www-form-urlencoded" }, 415, Code: "unsupported_media_type"),
            new("multipart body", ChatBody("\"max_tokens\":1") with { ContentType = "multipart/form-data; boundary=x" }, 415, Code: "unsupported_media_type"),
            // Authorization headers.
            new("no Authorization", ChatBody("\"max_tokens\":1") with { Authorization = null }, 401, Code: "invalid_api_key"),
            new("wrong key", ChatBody("\"max_tokens\":1") with { Authorization = "Bearer wrong" }, 401, Code: "invalid_api_key"),
            new("Basic credentials", ChatBody("\"max_tokens\":1") with { Authorization = "Basic dGVzdDp0ZXN0" }, 401, Code: "invalid_api_key"),
            new("empty bearer", ChatBody("\"max_tokens\":1") with { Authorization = "Bearer " }, 401, Code: "invalid_api_key"),
            new("key as a prefix of the real one", ChatBody("\"max_tokens\":1") with { Authorization = Bearer[..^1] }, 401, Code: "invalid_api_key"),
            new("lowercase scheme is accepted", ChatBody("\"max_tokens\":1") with { Authorization = "bearer " + HardenedServe.Key }, 200),
            // Host headers: routing never depends on them.
            new("Host of another port reaches /health", WireRequest.Get("/health") with { Host = "localhost:9000" }, 200),
            new("Host of a gateway reaches the API", WireRequest.Get("/v1/models") with { Host = "api.example.com", Authorization = Bearer }, 200),
            new("Host naming the gRPC port does not skip the key", WireRequest.Get("/v1/models") with { Host = "127.0.0.1:1" }, 401, Code: "invalid_api_key"),
            // Both listeners, HTTP/1.1 and h2c.
            new("h2c to the gRPC port: no OpenAI API, whatever Host", CompletionBody("\"prompt\":[1,2],\"max_tokens\":1") with { Listener = Listener.Grpc, Version = HttpVersion.Version20, Authorization = null, Host = "127.0.0.1:8000" }, 404),
            new("h2c to the gRPC port: no probes", WireRequest.Get("/health") with { Listener = Listener.Grpc, Version = HttpVersion.Version20 }, 404),
            new("h2c to the gRPC port: no metrics", WireRequest.Get("/metrics") with { Listener = Listener.Grpc, Version = HttpVersion.Version20 }, 404),
            new("HTTP/1.1 to the gRPC port", WireRequest.Get("/v1/models") with { Listener = Listener.Grpc, Authorization = Bearer }, 0),
            new("h2c to the HTTP port", WireRequest.Get("/v1/models") with { Version = HttpVersion.Version20, Authorization = Bearer }, 0),
            new("unknown route", WireRequest.Get("/v1/nothing-here") with { Authorization = Bearer }, 404, Code: "unknown_url"),
            new("GET on a POST route", WireRequest.Get(Chat) with { Authorization = Bearer }, 404, Code: "unknown_url"),
            new("unknown model", WireRequest.Post(Chat, $$"""{"model":"gpt-4","messages":{{Hello}}}""") with { Authorization = Bearer }, 404, "model", "model_not_found"),
            new("unknown model in models.retrieve", WireRequest.Get("/v1/models/gpt-4") with { Authorization = Bearer }, 404, "model", "model_not_found"),
            new("unknown model with an escaped slash in models.retrieve", WireRequest.Get("/v1/models/org%2Fother") with { Authorization = Bearer }, 404, "model", "model_not_found"),
            // Probes and metrics are read-only: other methods are 405 naming the two they take.
            new("POST /metrics", new WireRequest("POST", "/metrics", "{}"u8.ToArray()), 405),
            new("PUT /metrics", new WireRequest("PUT", "/metrics", "{}"u8.ToArray()), 405),
            new("DELETE /metrics", new WireRequest("DELETE", "/metrics"), 405),
            new("POST /health", new WireRequest("POST", "/health", "{}"u8.ToArray()), 405),
            new("DELETE /ready", new WireRequest("DELETE", "/ready"), 405),
            new("HEAD /metrics", new WireRequest("HEAD", "/metrics"), 200),
            new("HEAD /health", new WireRequest("HEAD", "/health"), 200),
            // Ambiguous bodies: a key sent twice is refused, never resolved by whichever came last.
            new("duplicate key", ChatBody("\"max_tokens\":1,\"max_tokens\":2"), 400, "max_tokens", "duplicate_key"),
            new("duplicate key, once spelt with an escape", ChatBody("\"max_tokens\":1,\"max\\u005ftokens\":2"), 400, "max_tokens", "duplicate_key"),
            new("duplicate key inside a message", WireRequest.Post(Chat, $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"hi","content":"bye"}]}""") with { Authorization = Bearer }, 400, "messages[0].content", "duplicate_key"),
            new("duplicate key in stream_options", ChatBody("\"stream\":true,\"stream_options\":{\"include_usage\":true,\"include_usage\":false}"), 400, "stream_options.include_usage", "duplicate_key"),
            new("duplicate key in embeddings", WireRequest.Post(Embeddings, $$"""{"model":"{{Model}}","input":"a","input":"b"}""") with { Authorization = Bearer }, 400, "input", "duplicate_key"),
            // Fields common clients send: accepted at the value that changes nothing, else refused naming the field.
            new("logit_bias null", ChatBody("\"max_tokens\":1,\"logit_bias\":null"), 200),
            new("logit_bias empty", ChatBody("\"max_tokens\":1,\"logit_bias\":{}"), 200),
            new("completions logit_bias null", CompletionBody("\"prompt\":\"hi\",\"max_tokens\":1,\"logit_bias\":null"), 200),
            new("response_format text", ChatBody("\"max_tokens\":1,\"response_format\":{\"type\":\"text\"}"), 200),
            new("parallel_tool_calls without tools", ChatBody("\"max_tokens\":1,\"parallel_tool_calls\":false"), 200),
            new("user", ChatBody("\"max_tokens\":1,\"user\":\"user-1234\""), 200),
            new("service_tier auto", ChatBody("\"max_tokens\":1,\"service_tier\":\"auto\""), 200),
            new("store false", ChatBody("\"max_tokens\":1,\"store\":false"), 200),
            new("metadata", ChatBody("\"max_tokens\":1,\"metadata\":{\"purpose\":\"test\"}"), 200),
            new("logit_bias with a bias", ChatBody("\"logit_bias\":{\"5\":10}"), 400, "logit_bias", "unsupported_value"),
            new("logit_bias as a list", ChatBody("\"logit_bias\":[5]"), 400, "logit_bias"),
            new("response_format json_object", ChatBody("\"max_tokens\":8,\"response_format\":{\"type\":\"json_object\"}"), 200),
            new("response_format json_schema", ChatBody("\"max_tokens\":8,\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{},\"strict\":true}}"), 200),
            new("response_format json_schema with pattern", ChatBody("\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"string\",\"pattern\":\"a\"}}}"), 400, "response_format.json_schema.schema.pattern", "unsupported_value"),
            new("response_format json_schema without a schema", ChatBody("\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}}"), 400, "response_format.json_schema.schema"),
            new("response_format json_schema as a string", ChatBody("\"response_format\":{\"type\":\"json_schema\",\"json_schema\":\"x\"}"), 400, "response_format.json_schema"),
            new("response_format json_schema with an unknown member", ChatBody("\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{},\"extra\":1}}"), 400, "response_format.json_schema.extra"),
            new("response_format text with json_schema", ChatBody("\"response_format\":{\"type\":\"text\",\"json_schema\":{\"name\":\"x\"}}"), 400, "response_format.json_schema"),
            new("response_format unknown type", ChatBody("\"response_format\":{\"type\":\"xml\"}"), 400, "response_format.type", "unsupported_value"),
            new("response_format json_schema with min_tokens", ChatBody("\"min_tokens\":2,\"response_format\":{\"type\":\"json_object\"}"), 400, "min_tokens"),
            new("response_format without a type", ChatBody("\"response_format\":{}"), 400, "response_format.type"),
            new("response_format as a string", ChatBody("\"response_format\":\"text\""), 400, "response_format"),
            new("response_format with an unknown field", ChatBody("\"response_format\":{\"type\":\"text\",\"strict\":true}"), 400, "response_format.strict"),
            new("store true", ChatBody("\"store\":true"), 400, "store", "unsupported_value"),
            new("service_tier priority", ChatBody("\"service_tier\":\"priority\""), 400, "service_tier", "unsupported_value"),
            new("metadata with a number value", ChatBody("\"metadata\":{\"n\":1}"), 400, "metadata.n"),
            new("parallel_tool_calls as a string", ChatBody("\"parallel_tool_calls\":\"yes\""), 400, "parallel_tool_calls"),
            new("tools empty", ChatBody("\"tools\":[]"), 400, "tools"),
            new("tools as an object", ChatBody("\"tools\":{}"), 400, "tools"),
            new("a tool that is null", ChatBody("\"tools\":[null]"), 400, "tools[0]"),
            new("a tool without a function", ChatBody("\"tools\":[{\"type\":\"function\"}]"), 400, "tools[0].function"),
            new("a tool function with an unknown member", ChatBody("\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"extra\":1}}]"), 400, "tools[0].function.extra"),
            // tool_choice none: the function is checked but not described to the model, whose 256-token context could not hold it.
            new("a tool", ChatBody("\"max_tokens\":1,\"tool_choice\":\"none\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"d\",\"strict\":true,\"parameters\":{\"type\":\"object\"}}}]"), 200),
            new("tool_choice none without tools", ChatBody("\"max_tokens\":1,\"tool_choice\":\"none\""), 200),
            new("tool_choice as a number", ChatBody("\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":1"), 400, "tool_choice"),
            new("tool_choice with an unknown member", ChatBody("\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"},\"x\":1}"), 400, "tool_choice.x"),
            new("tool_choice of another type", ChatBody("\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"file_search\"}"), 400, "tool_choice.type"),
            new("tool_calls in a user message", WireRequest.Post(Chat, $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"hi","tool_calls":[]}]}""") with { Authorization = Bearer }, 400, "messages[0].tool_calls"),
            new("a tool call without arguments", WireRequest.Post(Chat, $$$"""{"model":"{{{Model}}}","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f"}}]}]}""") with { Authorization = Bearer }, 400, "messages[1].tool_calls[0].function.arguments"),
            new("a tool call without an id", WireRequest.Post(Chat, $$$"""{"model":"{{{Model}}}","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]}""") with { Authorization = Bearer }, 400, "messages[1].tool_calls[0].id"),
        };
        var data = new TheoryData<Row>();
        foreach (var row in rows) data.Add(row);
        return data;
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public async Task Bad_input_gets_its_status_and_openai_error_and_the_server_keeps_serving(Row row)
    {
        var response = await shared.Wire.SendAsync(row.Request);
        switch (row.Status)
        {
            case 0:
                // No HTTP answer, or at least none from the API: the listener does not speak that protocol.
                Assert.True(!response.Answered || (response.Status is >= 400 and < 500 && !response.Body.Contains("\"choices\"", StringComparison.Ordinal)),
                    $"{row.Name}: got {response.Status}: {response.Body}");
                break;
            case 200:
                Assert.True(response.Status == 200, $"{row.Name}: expected 200, got {response.Status}: {response.Body} {response.Failure}");
                break;
            case 405:
                Assert.True(response.Status == 405, $"{row.Name}: expected 405, got {response.Status}: {response.Body} {response.Failure}");
                Assert.Equal(["GET", "HEAD"], (response.Allow ?? "").Split(", ").Order());
                break;
            case 404 when row.Request.Listener == Listener.Grpc:
                Assert.True(response.Status == 404, $"{row.Name}: expected 404, got {response.Status}: {response.Body} {response.Failure}");
                Assert.DoesNotContain("\"error\"", response.Body, StringComparison.Ordinal);
                break;
            default:
                AssertOpenAiError(row, response);
                break;
        }
        await AssertServesAsync();
    }

    private static void AssertOpenAiError(Row row, WireResponse response)
    {
        Assert.True(response.Status == row.Status, $"{row.Name}: expected {row.Status}, got {response.Status}: {response.Body} {response.Failure}");
        Assert.Equal("application/json", response.MediaType);
        var error = JsonDocument.Parse(response.Body).RootElement.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()), row.Name);
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("type").GetString()), row.Name);
        if (row.Param is not null) Assert.True(row.Param == error.GetProperty("param").GetString(), $"{row.Name}: param {error.GetProperty("param")}: {response.Body}");
        if (row.Code is not null) Assert.True(row.Code == error.GetProperty("code").GetString(), $"{row.Name}: code {error.GetProperty("code")}: {response.Body}");
        Assert.DoesNotContain("   at ", response.Body, StringComparison.Ordinal);
    }

    private async Task AssertServesAsync()
    {
        var models = await shared.Wire.SendAsync(WireRequest.Get("/v1/models") with { Authorization = Bearer });
        Assert.Equal(200, models.Status);
        var completion = await shared.Wire.SendAsync(CompletionBody("\"prompt\":[1,2,3],\"max_tokens\":2,\"temperature\":0"));
        Assert.True(completion.Status == 200, $"the server stopped serving: {completion.Status}: {completion.Body}\n{shared.Server.Log}");
        Assert.Contains("\"finish_reason\":\"length\"", completion.Body, StringComparison.Ordinal);
    }
}
