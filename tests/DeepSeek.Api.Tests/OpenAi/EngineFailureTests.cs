using System.Net;
using System.Text;
using System.Text.Json;
using DeepSeek.Api.Tests.Backend;
using DeepSeek.Api.Tests.Infrastructure;
using DeepSeek.Api.Tests.Serve;

namespace DeepSeek.Api.Tests.OpenAi;

/// <summary>
/// A request the engine fails (its last event has finish reason error, a message and a code) reaches
/// the client unchanged on every path: a whole response's status and OpenAI error, a stream's error
/// event (which the openai SDK raises), gRPC's status; and other requests keep being served.
/// </summary>
public sealed class EngineFailureTests : IAsyncLifetime
{
    private RunningServer _server = null!;
    private static readonly string FailingPrompt = $"[1,2,{TestBackend.FailMarker}]";

    public async Task InitializeAsync() => _server = await RunningServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static StringContent Completion(string prompt, bool stream) => new(
        $$"""{"model":"deepseek-test","prompt":{{prompt}},"max_tokens":8,"stream":{{(stream ? "true" : "false")}}}""", Encoding.UTF8, "application/json");

    [Fact]
    public async Task A_whole_response_is_a_500_with_the_engines_message_and_code()
    {
        using var response = await _server.Http.PostAsync(new Uri("/v1/completions", UriKind.Relative), Completion(FailingPrompt, stream: false));
        var error = await BadInputTests.AssertOpenAiErrorAsync(response, 500, null, "engine failure");
        Assert.Equal(TestBackend.FailureCode, error.GetProperty("code").GetString());
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.Contains("injected fault", error.GetProperty("message").GetString(), StringComparison.Ordinal);

        using var fine = await _server.Http.PostAsync(new Uri("/v1/completions", UriKind.Relative), Completion("[1,2,3]", stream: false));
        Assert.Equal(HttpStatusCode.OK, fine.StatusCode);
    }

    [Fact]
    public async Task A_stream_ends_with_an_error_event_after_the_tokens_it_had()
    {
        using var response = await _server.Http.PostAsync(new Uri("/v1/completions", UriKind.Relative), Completion(FailingPrompt, stream: true));
        var events = (await response.Content.ReadAsStringAsync())
            .Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(e => e["data: ".Length..])
            .ToList();
        Assert.Equal("[DONE]", events[^1]);
        var error = JsonDocument.Parse(events[^2]).RootElement.GetProperty("error");
        Assert.Equal(TestBackend.FailureCode, error.GetProperty("code").GetString());
        Assert.Contains("injected fault", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.True(events.Count >= 3, "The tokens before the failure were not streamed.");
    }

    [Fact]
    public async Task The_openai_sdk_raises_the_servers_error_for_a_failed_stream_and_a_failed_response()
    {
        var result = await ServeClients.OpenAiAsync(_server.HttpUrl, "deepseek-test", RunningServer.Key, "failingStream",
            new() { ["PROMPT_IDS"] = FailingPrompt });
        Assert.False(result.TryGetProperty("completed", out _), $"The SDK did not see the failure: {result}");
        Assert.Contains("injected fault", result.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(500, result.GetProperty("whole").GetProperty("status").GetInt32());
        Assert.Equal(TestBackend.FailureCode, result.GetProperty("whole").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Grpc_generate_ends_with_internal_and_the_engines_message_and_code()
    {
        var result = await ServeClients.GrpcAsync(_server.GrpcAddress, "failingGenerate", new() { ["PROMPT_IDS"] = FailingPrompt }, RunningServer.Key);
        Assert.Equal("INTERNAL", result.GetProperty("code").GetString());
        Assert.Contains("injected fault", result.GetProperty("details").GetString(), StringComparison.Ordinal);
        Assert.Equal(TestBackend.FailureCode, result.GetProperty("errorCode").GetString());
        Assert.Equal(2, result.GetProperty("tokens").GetInt32());
    }
}
