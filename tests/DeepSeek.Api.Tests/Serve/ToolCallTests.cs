using System.Text.Json;
using DeepSeek.Api.Tests.Infrastructure;

namespace DeepSeek.Api.Tests.Serve;

/// <summary>
/// One <c>serve</c> of the tiny model with a context long enough for functions described in the
/// system prompt (about a thousand tokens on its byte-level tokenizer) and a call after them.
/// </summary>
public sealed class ToolServe : IAsyncLifetime
{
    private readonly LongContextModel _model = new(contextTokens: 4096);

    public ServeProcess Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await ServeProcess.StartAsync("--model", _model.Directory);

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        _model.Dispose();
    }
}

/// <summary>
/// Tool calls through the official openai SDK against a real <c>serve</c> of the random-weights tiny
/// model: its own choices are noise, so every well-formed call is the call grammar's doing. Arguments
/// are validated in the client with ajv against the offered schemas.
/// </summary>
public sealed class ToolCallTests(ToolServe shared) : IClassFixture<ToolServe>
{
    private ServeProcess Server => shared.Server;

    [Fact]
    public async Task Fifty_forced_calls_required_parallel_and_named_streamed_and_whole_parse_and_validate()
    {
        // Fifty generations of about two hundred tokens each (a call's markers alone are some 150 tokens of
        // the byte-level test vocabulary): a longer deadline than one call's.
        var summary = await ServeClients.OpenAiAsync(Server, "toolsForced", extra: new() { ["PROMPTS"] = "50" }, timeout: TimeSpan.FromSeconds(600));
        Assert.True(summary.GetProperty("count").GetInt32() == 50, summary.ToString());
        Assert.True(summary.GetProperty("valid").GetInt32() == 50, $"invalid calls: {summary}");
        Assert.Equal(["tool_calls"], summary.GetProperty("finishes").EnumerateArray().Select(f => f.GetString()));
        Assert.Equal(24, summary.GetProperty("streamed").GetInt32());
        // Parallel turns of short calls have room for two; seeded, the same ones make two each run.
        Assert.True(summary.GetProperty("mostCalls").GetInt32() >= 2, summary.ToString());
        Assert.True(summary.GetProperty("mostCallsStreamed").GetInt32() >= 2, summary.ToString());
        Assert.Equal(["named", "required"], summary.GetProperty("modes").EnumerateArray().Select(m => m.GetString()!).Order());
        Assert.True(summary.GetProperty("calls").GetInt32() >= 50, summary.ToString());
        // Both named functions were forced, so each was called at least once.
        var functions = summary.GetProperty("functions").EnumerateArray().Select(f => f.GetString()).ToList();
        Assert.Contains("get_weather", functions);
        Assert.Contains("create_event", functions);
    }

    [Fact]
    public async Task A_call_its_tool_result_and_the_next_turns_round_trip_through_the_template()
    {
        var result = await ServeClients.OpenAiAsync(Server, "toolRoundTrip");
        Assert.Equal(1, result.GetProperty("firstCalls").GetInt32());
        Assert.Equal("tool_calls", result.GetProperty("firstFinish").GetString());
        var after = result.GetProperty("after");
        Assert.Contains(after.GetProperty("finish").GetString(), new[] { "stop", "length", "tool_calls" });
        Assert.True(after.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() > 0);
        Assert.Contains(result.GetProperty("streamed").GetProperty("finish").GetString(), new[] { "stop", "length", "tool_calls" });
        var again = result.GetProperty("again");
        Assert.True(again.GetProperty("valid").GetBoolean(), again.ToString());
    }

    [Fact]
    public async Task Auto_and_none_answer_the_models_own_text_as_content()
    {
        var outcomes = (await ServeClients.OpenAiAsync(Server, "toolAuto")).EnumerateArray().ToList();
        Assert.Equal(4, outcomes.Count);
        foreach (var outcome in outcomes)
        {
            Assert.Contains(outcome.GetProperty("finish").GetString(), new[] { "stop", "length" });
            Assert.Equal(JsonValueKind.String, outcome.GetProperty("content").ValueKind);
            Assert.Equal(0, outcome.GetProperty("calls").GetInt32());
            Assert.DoesNotContain("tool▁", outcome.GetProperty("content").GetString(), StringComparison.Ordinal);
        }
        // Greedy: the same text streamed and whole.
        Assert.Equal(outcomes[0].GetProperty("content").GetString(), outcomes[1].GetProperty("content").GetString());
    }

    [Fact]
    public async Task Bad_tool_requests_are_400s_naming_the_field()
    {
        var outcomes = await ServeClients.OpenAiAsync(Server, "toolRefusals");
        var expected = new Dictionary<string, (string Param, string Code)>
        {
            ["toolWithoutId"] = ("messages[2].tool_call_id", "invalid_value"),
            ["toolUnknownId"] = ("messages[2].tool_call_id", "invalid_value"),
            ["toolWithoutCall"] = ("messages[1]", "invalid_value"),
            ["unknownFunction"] = ("tool_choice.function.name", "invalid_value"),
            ["choiceWithoutTools"] = ("tool_choice", "invalid_value"),
            ["unknownChoice"] = ("tool_choice", "invalid_value"),
            ["badSchema"] = ("tools[0].function.parameters.properties.a.format", "unsupported_value"),
            ["notAnObject"] = ("tools[0].function.parameters", "invalid_value"),
            ["badName"] = ("tools[0].function.name", "invalid_value"),
            ["badType"] = ("tools[0].type", "unsupported_value"),
            ["sameNameTwice"] = ("tools[1].function.name", "invalid_value"),
            ["requiredWithJson"] = ("tool_choice", "invalid_value"),
        };
        foreach (var (name, (param, code)) in expected)
        {
            var error = outcomes.GetProperty(name);
            Assert.True(error.ValueKind == JsonValueKind.Object, $"{name} was accepted");
            Assert.True(error.GetProperty("status").GetInt32() == 400, $"{name}: {error}");
            Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
            Assert.True(error.GetProperty("param").GetString() == param, $"{name}: {error}");
            Assert.True(error.GetProperty("code").GetString() == code, $"{name}: {error}");
        }
    }
}
