using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;

namespace DeepSeek.Runtime.Bench;

/// <summary>
/// Load against a running OpenAI-compatible server: per concurrency level, that many closed-loop
/// clients each send their requests one after another as streamed <c>/v1/completions</c> with random
/// token-id prompts. The length is forced with <c>min_tokens = max_tokens</c> (vLLM's field; this
/// server has no <c>ignore_eos</c>), and <c>logprobs: 0</c> with token ids makes every token a chunk of
/// its own even where its text is empty, so chunks count tokens. Greedy sampling: the numbers do not
/// depend on a sampler's randomness.
/// </summary>
public sealed class HttpLoadBenchmark(HttpClient http, Uri baseUrl, string? apiKey, string model, int vocabularyBound, int seed)
{
    /// <summary>A handler whose pool admits every client of the largest level at once.</summary>
    public static SocketsHttpHandler Handler(int maxConcurrency) => new()
    {
        MaxConnectionsPerServer = Math.Max(maxConcurrency, 1),
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
    };

    /// <summary>The first model of <c>GET /v1/models</c>.</summary>
    public static async Task<string> FirstModelAsync(HttpClient http, Uri baseUrl, string? apiKey, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(baseUrl, "v1/models"));
        Authorize(request, apiKey);
        using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"GET {request.RequestUri} answered {(int)response.StatusCode}: {CompletionChunk.Shorten(body)}");
        using var document = JsonDocument.Parse(body);
        if (document.RootElement.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Array && data.GetArrayLength() > 0
            && data[0].TryGetProperty("id", out var id) && id.GetString() is { Length: > 0 } name)
            return name;
        throw new InvalidOperationException($"GET {request.RequestUri} lists no model; pass --model.");
    }

    public async Task<HttpLevelRun> RunLevelAsync(int concurrency, int requestsPerClient, int promptTokens, int outputTokens,
        Action onRequestDone, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var perClient = await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async client =>
        {
            // A prompt of its own per request: no prefix-cache hit flatters the numbers.
            var random = new Random(HashCode.Combine(seed, concurrency, client));
            var outcomes = new List<HttpRequestOutcome>(requestsPerClient);
            for (var i = 0; i < requestsPerClient; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var prompt = Enumerable.Range(0, promptTokens).Select(_ => random.Next(vocabularyBound)).ToArray();
                outcomes.Add(await SendAsync(prompt, outputTokens, cancellationToken).ConfigureAwait(false));
                onRequestDone();
            }
            return outcomes;
        })).ConfigureAwait(false);
        return new HttpLevelRun(concurrency, [.. perClient.SelectMany(o => o)], clock.Elapsed);
    }

    /// <summary>One streamed completion, timed from the send; every failure becomes an outcome, none is thrown.</summary>
    public async Task<HttpRequestOutcome> SendAsync(IReadOnlyList<int> prompt, int outputTokens, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(baseUrl, "v1/completions"))
        {
            Content = new ByteArrayContent(RequestBody(model, prompt, outputTokens)) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
        };
        Authorize(request, apiKey);
        var clock = Stopwatch.StartNew();
        double ttft = 0, last = 0;
        var itl = new List<double>(outputTokens);
        var tokens = 0;
        int? usage = null;
        HttpRequestOutcome Failed(string failure, string detail) => new(failure, detail, ttft, itl, clock.Elapsed.TotalMilliseconds, tokens, usage);
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                return Failed($"HTTP {(int)response.StatusCode}", CompletionChunk.Shorten(body));
            }
            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var done = false;
            await foreach (var data in ServerSentEventReader.ReadDataAsync(stream, () => done = true, cancellationToken).ConfigureAwait(false))
            {
                var chunk = CompletionChunk.Parse(data);
                if (chunk.Error is not null) return Failed("stream error", chunk.Error);
                usage = chunk.UsageCompletionTokens ?? usage;
                if (chunk.Tokens == 0) continue;
                var now = clock.Elapsed.TotalMilliseconds;
                if (tokens == 0) ttft = now;
                else itl.Add(now - last);
                last = now;
                tokens += chunk.Tokens;
            }
            if (!done) return Failed("no [DONE]", "The stream ended without data: [DONE].");
            var counted = usage ?? tokens;
            if (tokens != outputTokens || counted != outputTokens)
                return Failed("length", $"{tokens} token chunks, usage {usage?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "absent"}; expected {outputTokens}.");
            return new HttpRequestOutcome(null, null, ttft, itl, clock.Elapsed.TotalMilliseconds, tokens, usage);
        }
        catch (HttpRequestException e)
        {
            return Failed("connection", e.Message);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            return Failed("timeout", e.Message);
        }
        catch (Exception e) when (e is JsonException or FormatException or IOException)
        {
            return Failed("bad stream", e.Message);
        }
    }

    /// <summary>The request body, written by hand: the trimmed GPU bundle has no reflection-based JSON.</summary>
    internal static byte[] RequestBody(string model, IReadOnlyList<int> prompt, int outputTokens)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("model", model);
            json.WriteStartArray("prompt");
            foreach (var id in prompt) json.WriteNumberValue(id);
            json.WriteEndArray();
            json.WriteNumber("max_tokens", outputTokens);
            json.WriteNumber("min_tokens", outputTokens);
            json.WriteNumber("temperature", 0);
            json.WriteNumber("logprobs", 0);
            json.WriteBoolean("return_tokens_as_token_ids", true);
            json.WriteBoolean("stream", true);
            json.WriteStartObject("stream_options");
            json.WriteBoolean("include_usage", true);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static void Authorize(HttpRequestMessage request, string? apiKey)
    {
        if (!string.IsNullOrEmpty(apiKey)) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
    }
}
