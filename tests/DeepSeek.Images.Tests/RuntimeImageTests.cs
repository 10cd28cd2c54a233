using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using DeepSeek.Images.Tests.Infrastructure;

namespace DeepSeek.Images.Tests;

/// <summary>The CPU runtime image, run as the chart runs it, serving its embedded tiny model.</summary>
[Collection(ImagesCollection.Name)]
public sealed partial class RuntimeImageTests(BuiltImages images)
{
    private const string Model = "deepseek-v3-tiny";
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromMinutes(4);

    // The published port equals the container port: the runtime routes its HTTP endpoints by the port
    // in the Host header (RequireHost), which port publishing would otherwise change.
    private static IEnumerable<string> HttpPort(int port) => ["--http-port", port.ToString(CultureInfo.InvariantCulture)];

    [Fact]
    public async Task Serves_ready_and_the_reference_greedy_completion()
    {
        await using var container = await Container.StartAsync(images.RuntimeCpu, HttpPort, "serve", "--host", "0.0.0.0");
        await WaitReadyAsync(container);

        // HF transformers' greedy continuation of the fixture's first prompt (tests/fixtures).
        using var reference = JsonDocument.Parse(await File.ReadAllTextAsync(Repository.PathOf("tests", "fixtures", Model, "reference.json")));
        var prompt = reference.RootElement.GetProperty("prompts")[0];
        var inputIds = prompt.GetProperty("input_ids").EnumerateArray().Select(v => v.GetInt32()).ToArray();
        var greedy = prompt.GetProperty("greedy").EnumerateArray().Select(v => v.GetInt32()).ToArray();

        using var response = await container.Http.PostAsync(new Uri("/v1/completions", UriKind.Relative), Json(
            $$"""{"model":"{{Model}}","prompt":{{JsonSerializer.Serialize(inputIds)}},"max_tokens":{{greedy.Length}},"temperature":0,"logprobs":0,"return_tokens_as_token_ids":true}"""));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {body}\n{await container.LogsAsync()}");

        using var completion = JsonDocument.Parse(body);
        var ids = completion.RootElement.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("tokens").EnumerateArray()
            .Select(t => int.Parse(t.GetString()!["token_id:".Length..], CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(greedy, ids);
        Assert.Equal(greedy.Length, completion.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Sigterm_finishes_the_in_flight_stream_refuses_new_requests_and_exits_zero()
    {
        // One request at a time, two queued behind it: the drain has seconds of work to finish.
        await using var container = await Container.StartAsync(images.RuntimeCpu, HttpPort,
            "serve", "--host", "0.0.0.0", "--max-running-requests", "1", "--drain-timeout", "600");
        await WaitReadyAsync(container);

        using var first = Streaming(0);
        using var inFlight = await container.Http.SendAsync(first, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, inFlight.StatusCode);
        var stream = new StreamReader(await inFlight.Content.ReadAsStreamAsync());
        var firstLine = await stream.ReadLineAsync();
        Assert.StartsWith("data: {", firstLine, StringComparison.Ordinal);
        var queued = Enumerable.Range(1, 2).Select(async i =>
        {
            using var request = Streaming(i);
            using var response = await container.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        }).ToList();
        await Eventually.HoldsAsync(async () =>
            (await container.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative))).Split('\n')
                .Any(line => line.StartsWith("deepseek_requests_waiting{", StringComparison.Ordinal) && line.EndsWith(" 2", StringComparison.Ordinal)),
            ReadyTimeout, "two requests waiting behind the running one");

        await container.SignalAsync("TERM");

        await Eventually.HoldsAsync(async () =>
        {
            using var ready = await container.Http.GetAsync(new Uri("/ready", UriKind.Relative));
            return ready.StatusCode == HttpStatusCode.ServiceUnavailable;
        }, ReadyTimeout, "/ready turning 503 after SIGTERM");
        using (var refused = await container.Http.PostAsync(new Uri("/v1/completions", UriKind.Relative),
                   Json($$"""{"model":"{{Model}}","prompt":[1,2,3],"max_tokens":2}""")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        }

        var rest = firstLine + "\n" + await stream.ReadToEndAsync();
        Assert.Contains("\"finish_reason\":\"length\"", rest, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]", rest.TrimEnd(), StringComparison.Ordinal);
        foreach (var (status, body) in await Task.WhenAll(queued))
        {
            var ending = body.Length > 1500 ? body[^1500..] : body;
            Assert.True(status == HttpStatusCode.OK, $"{status}: {ending}");
            Assert.True(FinishedByTheModel().IsMatch(body) && body.TrimEnd().EndsWith("data: [DONE]", StringComparison.Ordinal),
                $"A queued request was not finished by the model:\n{ending}\nContainer log:\n{await container.LogsAsync()}");
        }

        Assert.Equal(0, await container.WaitForExitAsync());
        Assert.Contains("Draining", await container.LogsAsync(), StringComparison.Ordinal);
    }

    private static async Task WaitReadyAsync(Container container)
    {
        try
        {
            await Eventually.HoldsAsync(async () =>
            {
                using var ready = await container.Http.GetAsync(new Uri("/ready", UriKind.Relative));
                return ready.StatusCode == HttpStatusCode.OK;
            }, ReadyTimeout, $"{container.Id} answering /ready with 200");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidOperationException($"{e.Message}\nContainer log:\n{await container.LogsAsync()}", e);
        }
    }

    private static HttpRequestMessage Streaming(int last) => new(HttpMethod.Post, "/v1/completions")
    {
        // ~240 decode steps each on the 256-token model.
        Content = Json($$"""{"model":"{{Model}}","prompt":[1,2,{{last}}],"max_tokens":240,"temperature":0,"stream":true}"""),
    };

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    [System.Text.RegularExpressions.GeneratedRegex("\"finish_reason\":\"(stop|length)\"")]
    private static partial System.Text.RegularExpressions.Regex FinishedByTheModel();
}
