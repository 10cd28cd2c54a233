using System.Net;
using System.Text.Json;
using DeepSeek.Gateway.Tests.Infrastructure;
using static DeepSeek.Gateway.Tests.Infrastructure.Requests;

namespace DeepSeek.Gateway.Tests.EndToEnd;

/// <summary>The official openai SDK and plain HTTP through the gateway to real runtimes.</summary>
[Collection(GatewayCollection.Name)]
public sealed class RuntimeTests(RuntimesBehindGateway fixture) : IClassFixture<RuntimesBehindGateway>
{
    private RunningGateway Gateway => fixture.Gateway;

    [Fact]
    public async Task TheOpenAiSdkChatsStreamsCompletesAndEmbedsThroughTheGateway()
    {
        var chat = await OpenAiClient.RunAsync(Gateway.Url, "chat", RuntimesBehindGateway.Key, "chat");
        Assert.Equal(JsonValueKind.String, chat.GetProperty("content").ValueKind);
        Assert.True(chat.GetProperty("usage").GetProperty("completion_tokens").GetInt32() > 0);

        var stream = await OpenAiClient.RunAsync(Gateway.Url, "chat", RuntimesBehindGateway.Key, "chatStream");
        Assert.True(stream.GetProperty("chunks").GetInt32() > 1);
        Assert.True(stream.GetProperty("usage").GetProperty("total_tokens").GetInt32() > 0);
        Assert.NotEqual(JsonValueKind.Null, stream.GetProperty("finish").ValueKind);

        var completions = await OpenAiClient.RunAsync(Gateway.Url, "chat", RuntimesBehindGateway.Key, "completionsLogprobs");
        Assert.Equal(2, completions.GetProperty("choices").GetArrayLength());

        var embeddings = await OpenAiClient.RunAsync(Gateway.Url, "chat", RuntimesBehindGateway.Key, "embeddings");
        Assert.Equal(2, embeddings.GetProperty("base64").GetArrayLength());
        Assert.True(embeddings.GetProperty("floats")[0].GetArrayLength() > 0);
    }

    [Fact]
    public async Task ModelsListsWhatTheKeyMayUse()
    {
        var all = await OpenAiClient.RunAsync(Gateway.Url, "chat", RuntimesBehindGateway.Key, "models");
        Assert.Equal(["chat", RuntimeProcess.TinyModel], all.GetProperty("ids").EnumerateArray().Select(i => i.GetString()!));
        var scoped = await OpenAiClient.RunAsync(Gateway.Url, "chat", RuntimesBehindGateway.LimitedKey, "models");
        Assert.Equal([RuntimeProcess.TinyModel], scoped.GetProperty("ids").EnumerateArray().Select(i => i.GetString()!));
    }

    [Fact]
    public async Task TheSplitReachesBothVariantsEachUnderItsServedName()
    {
        var seen = new Dictionary<string, string>();
        for (var i = 0; i < 16 && seen.Count < 2; i++)
        {
            // Sampled (temperature 1, no seed): not cached, and a new prompt each time so prefix affinity does not pin one replica.
            using var response = await Gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("chat", $"split {i}", 1, ",\"temperature\":1"), RuntimesBehindGateway.Key));
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body);
            var variant = Header(response, "x-deepseek-variant");
            Assert.Equal(variant == "a" ? fixture.A.Url : fixture.B.Url, Header(response, "x-deepseek-endpoint"));
            seen[variant] = JsonDocument.Parse(body).RootElement.GetProperty("model").GetString()!;
        }
        Assert.Equal(RuntimeProcess.TinyModel, seen["a"]);
        Assert.Equal(RuntimesBehindGateway.ServedB, seen["b"]);
    }

    [Fact]
    public async Task ADeterministicRequestIsAnsweredFromTheCacheTheSecondTime()
    {
        var body = Chat("chat", "cache me", 3, ",\"temperature\":0");
        using var first = await Gateway.Http.SendAsync(Post("/v1/chat/completions", body, RuntimesBehindGateway.Key));
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("miss", Header(first, "x-deepseek-cache"));
        // The same request spelled otherwise is the same entry.
        var respelled = """{ "max_tokens": 3, "temperature": 0.0, "messages": [ {"content": "cache me", "role": "user"} ], "model": "chat" }""";
        using var second = await Gateway.Http.SendAsync(Post("/v1/chat/completions", respelled, RuntimesBehindGateway.Key));
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal("hit", Header(second, "x-deepseek-cache"));
        Assert.Equal(Header(first, "x-deepseek-variant"), Header(second, "x-deepseek-variant"));
        Assert.Equal(await first.Content.ReadAsStringAsync(), await second.Content.ReadAsStringAsync());
        await MetricsShowAsync("deepseek_gateway_cache_hits_total{otel_scope_name=\"DeepSeek.Gateway\",model=\"chat\"}");
    }

    [Fact]
    public async Task ADeterministicStreamIsReplayedFromTheCacheAsTheSameEvents()
    {
        var body = Chat("chat", "stream me", 3, ",\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}");
        using var first = await Gateway.Http.SendAsync(Post("/v1/chat/completions", body, RuntimesBehindGateway.Key));
        var live = await first.Content.ReadAsStringAsync();
        Assert.True(first.StatusCode == HttpStatusCode.OK, live);
        Assert.Equal("miss", Header(first, "x-deepseek-cache"));
        Assert.EndsWith("data: [DONE]", live.TrimEnd(), StringComparison.Ordinal);

        using var second = await Gateway.Http.SendAsync(Post("/v1/chat/completions", body, RuntimesBehindGateway.Key));
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal("hit", Header(second, "x-deepseek-cache"));
        Assert.Equal("text/event-stream", second.Content.Headers.ContentType!.MediaType);
        Assert.Equal(live, await second.Content.ReadAsStringAsync());
        // The same request not streamed is an entry of its own.
        using var unstreamed = await Gateway.Http.SendAsync(Post("/v1/chat/completions", Chat("chat", "stream me", 3, ",\"temperature\":0"), RuntimesBehindGateway.Key));
        Assert.Equal("miss", Header(unstreamed, "x-deepseek-cache"));

        // The official SDK reads a replayed stream as it reads a live one: the second run is a hit.
        var sdkFirst = await OpenAiClient.RunAsync(Gateway.Url, "chat", RuntimesBehindGateway.Key, "chatStream");
        var sdkReplayed = await OpenAiClient.RunAsync(Gateway.Url, "chat", RuntimesBehindGateway.Key, "chatStream");
        Assert.True(sdkReplayed.GetProperty("chunks").GetInt32() > 1);
        Assert.Equal(sdkFirst.GetRawText(), sdkReplayed.GetRawText());
    }

    [Fact]
    public async Task AStreamWithoutIncludeUsageStillCountsItsTokensAndTheClientSeesNoUsageChunk()
    {
        using var request = Post("/v1/completions", $$"""{"model":"{{RuntimeProcess.TinyModel}}","prompt":"count me","max_tokens":3,"stream":true}""", RuntimesBehindGateway.Key);
        request.Headers.Add("x-request-id", "stream-usage-1");
        using var response = await Gateway.Http.SendAsync(request);
        var events = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, events);
        Assert.EndsWith("data: [DONE]", events.TrimEnd(), StringComparison.Ordinal);
        Assert.Contains("\"finish_reason\":\"length\"", events, StringComparison.Ordinal);
        Assert.DoesNotContain("\"usage\"", events, StringComparison.Ordinal);

        JsonElement line = default;
        await Eventually.HoldsAsync(async () =>
        {
            if (!File.Exists(fixture.AuditPath)) return false;
            var found = (await File.ReadAllTextAsync(fixture.AuditPath)).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
                .Where(l => l.GetProperty("request_id").GetString() == "stream-usage-1").ToList();
            if (found.Count == 0) return false;
            line = Assert.Single(found).Clone();
            return true;
        }, TimeSpan.FromSeconds(10), "the audit line of request stream-usage-1");
        Assert.True(line.GetProperty("prompt_tokens").GetInt64() > 0);
        Assert.Equal(3, line.GetProperty("completion_tokens").GetInt64());
    }

    [Fact]
    public async Task AKeyPastItsRequestsPerMinuteGets429WithRetryAfter()
    {
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            using var response = await Gateway.Http.SendAsync(Post("/v1/completions", $$"""{"model":"{{RuntimeProcess.TinyModel}}","prompt":"limit {{i}}","max_tokens":1}""", RuntimesBehindGateway.LimitedKey));
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.InRange(response.Headers.RetryAfter!.Delta!.Value.TotalSeconds, 1, 60);
                Assert.Equal("rate_limit_error", (await ErrorAsync(response)).GetProperty("type").GetString());
            }
        }
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], statuses);
        await MetricsShowAsync("deepseek_gateway_rate_limited_total{otel_scope_name=\"DeepSeek.Gateway\",key=\"limited\"} 1");
    }

    [Fact]
    public async Task AKeyPastItsTokensPerMinuteGets429()
    {
        // The first answer's usage (prompt and completion, more than 5 tokens) spends the key's minute.
        var body = $$"""{"model":"{{RuntimeProcess.TinyModel}}","prompt":"spend tokens","max_tokens":2}""";
        using var first = await Gateway.Http.SendAsync(Post("/v1/completions", body, RuntimesBehindGateway.TokenLimitedKey));
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        using var second = await Gateway.Http.SendAsync(Post("/v1/completions", body, RuntimesBehindGateway.TokenLimitedKey));
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.NotNull(second.Headers.RetryAfter);
        Assert.Contains("tokens per minute", (await ErrorAsync(second)).GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task EachRequestIsOneAuditLineWithoutKeyOrTextAndTheMetricsCountIt()
    {
        const string secretText = "audit-secret-prompt-text";
        using var request = Post("/v1/completions", $$"""{"model":"{{RuntimeProcess.TinyModel}}","prompt":"{{secretText}}","max_tokens":2}""", RuntimesBehindGateway.Key);
        request.Headers.Add("x-request-id", "audit-check-1");
        using var response = await Gateway.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("audit-check-1", Header(response, "x-request-id"));

        JsonElement line = default;
        await Eventually.HoldsAsync(async () =>
        {
            if (!File.Exists(fixture.AuditPath)) return false;
            var text = await File.ReadAllTextAsync(fixture.AuditPath);
            Assert.DoesNotContain(secretText, text, StringComparison.Ordinal);
            Assert.DoesNotContain(RuntimesBehindGateway.Key, text, StringComparison.Ordinal);
            var found = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
                .Where(l => l.GetProperty("request_id").GetString() == "audit-check-1").ToList();
            if (found.Count == 0) return false;
            line = Assert.Single(found).Clone();
            return true;
        }, TimeSpan.FromSeconds(10), "the audit line of request audit-check-1");
        Assert.Equal("team-a", line.GetProperty("key").GetString());
        Assert.Equal(RuntimeProcess.TinyModel, line.GetProperty("model").GetString());
        Assert.Equal("main", line.GetProperty("variant").GetString());
        Assert.Equal(fixture.A.Url, line.GetProperty("endpoint").GetString());
        Assert.Equal(200, line.GetProperty("status").GetInt32());
        Assert.True(line.GetProperty("prompt_tokens").GetInt64() > 0);
        Assert.Equal(2, line.GetProperty("completion_tokens").GetInt64());
        Assert.True(line.GetProperty("latency_ms").GetInt64() >= 0);
        Assert.Equal("miss", line.GetProperty("cache").GetString());
        Assert.True(DateTimeOffset.TryParse(line.GetProperty("time").GetString(), System.Globalization.CultureInfo.InvariantCulture, out _));

        await MetricsShowAsync($"deepseek_gateway_requests_total{{otel_scope_name=\"DeepSeek.Gateway\",code=\"200\",key=\"team-a\",model=\"{RuntimeProcess.TinyModel}\",variant=\"main\"}}");
        await MetricsShowAsync($"deepseek_gateway_request_duration_seconds_bucket{{otel_scope_name=\"DeepSeek.Gateway\",model=\"{RuntimeProcess.TinyModel}\",le=\"0.005\"}}");
    }

    [Fact]
    public async Task AStreamsUsageIsFoundInItsLastEventsForTheAudit()
    {
        using var request = Post("/v1/completions", $$$"""{"model":"{{{RuntimeProcess.TinyModel}}}","prompt":"stream usage","max_tokens":3,"stream":true,"stream_options":{"include_usage":true}}""", RuntimesBehindGateway.Key);
        request.Headers.Add("x-request-id", "audit-stream-1");
        using var response = await Gateway.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.EndsWith("data: [DONE]", (await response.Content.ReadAsStringAsync()).TrimEnd(), StringComparison.Ordinal);
        JsonElement line = default;
        await Eventually.HoldsAsync(async () =>
        {
            var found = (await File.ReadAllLinesAsync(fixture.AuditPath)).Where(l => l.Contains("\"audit-stream-1\"", StringComparison.Ordinal)).ToList();
            if (found.Count == 0) return false;
            line = JsonDocument.Parse(found[0]).RootElement.Clone();
            return true;
        }, TimeSpan.FromSeconds(10), "the audit line of request audit-stream-1");
        Assert.Equal(3, line.GetProperty("completion_tokens").GetInt64());
        Assert.True(line.GetProperty("prompt_tokens").GetInt64() > 0);
    }

    /// <summary>The exporter serves a scrape from a short cache, so a series just counted may show on the next one.</summary>
    private Task MetricsShowAsync(string series) => Eventually.HoldsAsync(
        async () => (await Gateway.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative))).Contains(series, StringComparison.Ordinal),
        TimeSpan.FromSeconds(10), series);

    [Fact]
    public async Task VersionAndProbesAnswerWithoutAKey()
    {
        var version = JsonDocument.Parse(await Gateway.Http.GetStringAsync(new Uri("/version", UriKind.Relative))).RootElement;
        Assert.Equal("v1", version.GetProperty("api").GetString());
        Assert.False(string.IsNullOrEmpty(version.GetProperty("gateway").GetString()));
        foreach (var probe in new[] { "/health", "/ready" })
        {
            using var response = await Gateway.Http.GetAsync(new Uri(probe, UriKind.Relative));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }
}
