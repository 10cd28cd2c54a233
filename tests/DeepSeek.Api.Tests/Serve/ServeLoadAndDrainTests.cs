using System.Net;
using DeepSeek.Api.Tests.Infrastructure;

namespace DeepSeek.Api.Tests.Serve;

/// <summary>Queueing, refusal and SIGTERM drain of the real <c>serve</c> process, each on its own server.</summary>
public sealed class ServeLoadAndDrainTests
{
    private static HttpRequestMessage Streaming(int last, int maxTokens) => new(HttpMethod.Post, "/v1/completions")
    {
        Content = ServeClients.Json($$"""{"model":"{{ServeProcess.ModelName}}","prompt":[1,2,{{last}}],"max_tokens":{{maxTokens}},"temperature":0,"stream":true}"""),
    };

    [Fact]
    public async Task Flood_shows_waiting_in_grpc_get_load_and_a_full_queue_is_429()
    {
        await using var server = await ServeProcess.StartAsync("--max-running-requests", "1", "--max-queued-requests", "2");
        // Each request runs ~240 decode steps, one at a time: the queue stays full for seconds.
        var flood = Enumerable.Range(0, 5).Select(async i =>
        {
            using var request = Streaming(i, 240);
            using var response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            var body = await response.Content.ReadAsStringAsync();
            return (response.StatusCode, response.Headers.RetryAfter?.Delta, body);
        }).ToList();

        var load = await ServeClients.GrpcAsync(server, "loadUntilWaiting");
        var results = await Task.WhenAll(flood);

        Assert.True(load.GetProperty("waiting").GetInt32() > 0, $"GetLoad never showed a waiting request: {load}");
        Assert.Equal(1, load.GetProperty("running").GetInt32());
        Assert.True(load.GetProperty("ready").GetBoolean());
        Assert.Equal(1, load.GetProperty("max_running_requests").GetInt32());
        Assert.Equal(2, load.GetProperty("max_queued_requests").GetInt32());
        Assert.InRange(load.GetProperty("kv_cache_usage").GetDouble(), 1e-9, 1.0);

        // One running and two waiting fit; of five sent at once, at least two are refused.
        var refused = results.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.True(refused.Count >= 2, string.Join("\n", results.Select(r => $"{r.StatusCode}: {r.body[..Math.Min(200, r.body.Length)]}")));
        Assert.All(refused, r => Assert.True(r.Delta > TimeSpan.Zero, "429 without Retry-After"));
        Assert.All(refused, r => Assert.Contains("\"rate_limit_error\"", r.body, StringComparison.Ordinal));
        Assert.All(results.Where(r => r.StatusCode == HttpStatusCode.OK), r => Assert.EndsWith("data: [DONE]", r.body.TrimEnd(), StringComparison.Ordinal));

        // The queue emptied: the server serves again.
        var (ids, _) = await ServeClients.GreedyCompletionAsync(server, [1, 2, 3], 2);
        Assert.Equal(2, ids.Length);
    }

    [Fact]
    public async Task Sigterm_drains_in_flight_streams_refuses_new_requests_and_exits()
    {
        await using var server = await ServeProcess.StartAsync("--max-running-requests", "1", "--drain-timeout", "600");
        using var first = Streaming(0, 240);
        using var inFlight = await server.Http.SendAsync(first, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, inFlight.StatusCode);
        var stream = new StreamReader(await inFlight.Content.ReadAsStreamAsync());
        var firstLine = await stream.ReadLineAsync();
        Assert.StartsWith("data: {", firstLine, StringComparison.Ordinal);
        // Two more queued behind it keep the drain busy for a few seconds. The drain timeout is far
        // beyond what three requests take even on a loaded 2-core CI machine: this test is about
        // finishing work, not about the timeout (the engine tests cover a drain that times out).
        var queued = Enumerable.Range(1, 2).Select(async i =>
        {
            using var request = Streaming(i, 240);
            using var response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        }).ToList();

        var bothWaiting = false;
        for (var attempt = 0; attempt < 400 && !bothWaiting; attempt++)
        {
            var metrics = await server.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
            bothWaiting = metrics.Split('\n').Any(line => line.StartsWith("deepseek_requests_waiting{", StringComparison.Ordinal) && line.EndsWith(" 2", StringComparison.Ordinal));
            if (!bothWaiting) await Task.Delay(10);
        }
        Assert.True(bothWaiting, "The two queued requests never showed as waiting.");

        await server.SendSigtermAsync();

        var draining = false;
        for (var attempt = 0; attempt < 200 && !draining; attempt++)
        {
            using var ready = await server.Http.GetAsync(new Uri("/ready", UriKind.Relative));
            draining = ready.StatusCode == HttpStatusCode.ServiceUnavailable;
            if (!draining) await Task.Delay(25);
        }
        Assert.True(draining, "/ready never turned 503 after SIGTERM.");
        using (var refused = await server.Http.PostAsync(new Uri("/v1/completions", UriKind.Relative), ServeClients.Json(
                   $$"""{"model":"{{ServeProcess.ModelName}}","prompt":[1,2,3],"max_tokens":2}""")))
        {
            var body = await refused.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Contains("\"draining\"", body, StringComparison.Ordinal);
        }

        var rest = firstLine + "\n" + await stream.ReadToEndAsync();
        Assert.Contains("\"finish_reason\":\"length\"", rest, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]", rest.TrimEnd(), StringComparison.Ordinal);
        foreach (var (status, body) in await Task.WhenAll(queued))
        {
            // Finished by the model (end-of-sequence or max_tokens), not cut off by the shutdown.
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Matches("\"finish_reason\":\"(stop|length)\"", body);
            Assert.EndsWith("data: [DONE]", body.TrimEnd(), StringComparison.Ordinal);
        }
        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(120)));
    }
}
