using System.Text.Json;
using DeepSeek.Api.Tests.Infrastructure;

namespace DeepSeek.Api.Tests.Serve;

/// <summary>
/// <c>response_format</c> through the official openai SDK against a real <c>serve</c> of the embedded
/// random-weights tiny model: the model's own choices are noise, so every valid document is the
/// constraint's doing. Outputs are validated in the client with ajv.
/// </summary>
public sealed class StructuredOutputTests(SharedServe shared) : IClassFixture<SharedServe>
{
    private ServeProcess Server => shared.Server;

    private static void AllValid(JsonElement summary, int count)
    {
        Assert.True(summary.GetProperty("count").GetInt32() == count, summary.ToString());
        Assert.True(summary.GetProperty("valid").GetInt32() == count, $"invalid outputs: {summary}");
        Assert.Equal(["stop"], summary.GetProperty("finishes").EnumerateArray().Select(f => f.GetString()));
        Assert.Empty(summary.GetProperty("failures").EnumerateArray());
    }

    [Fact]
    public async Task Sixty_json_schema_and_json_object_outputs_streamed_and_whole_parse_and_validate()
    {
        // Sixty generations, one after another: 6 s on an idle machine, but a CI run's projects share the cores
        // (an image build beside it, two busy loops) and one run needed 1 min 50 s; like the fifty tool calls, a
        // deadline for sixty generations, not one call's. It is there to end a hang, not to time the server.
        var summary = await ServeClients.OpenAiAsync(Server, "structured", extra: new() { ["PROMPTS"] = "60" }, timeout: TimeSpan.FromSeconds(600));
        AllValid(summary, 60);
        Assert.Equal(30, summary.GetProperty("streamed").GetInt32());
        Assert.Equal(7, summary.GetProperty("schemas").GetArrayLength());
    }

    [Fact]
    public async Task Constrained_and_free_requests_at_once_each_get_a_valid_result()
    {
        var result = await ServeClients.OpenAiAsync(Server, "structuredMixed");
        AllValid(result.GetProperty("constrained"), 16);
        var free = result.GetProperty("free").EnumerateArray().ToList();
        Assert.Equal(16, free.Count);
        Assert.All(free, f => Assert.Contains(f.GetProperty("finish").GetString(), new[] { "stop", "length" }));
    }

    [Fact]
    public async Task Bad_response_formats_are_400s_in_openai_shape_and_the_server_keeps_serving()
    {
        var outcomes = await ServeClients.OpenAiAsync(Server, "structuredRefusals");
        var expected = new Dictionary<string, (string Param, string Code)>
        {
            ["pattern"] = ("response_format.json_schema.schema.properties.a.pattern", "unsupported_value"),
            ["format"] = ("response_format.json_schema.schema.format", "unsupported_value"),
            ["ref"] = ("response_format.json_schema.schema.$defs", "unsupported_value"),
            ["missingSchema"] = ("response_format.json_schema.schema", "invalid_value"),
            ["unknownType"] = ("response_format.type", "unsupported_value"),
            ["schemaNotAnObject"] = ("response_format.json_schema.schema", "invalid_value"),
            ["badName"] = ("response_format.json_schema.name", "invalid_value"),
            ["unknownMember"] = ("response_format.json_schema.extra", "invalid_value"),
            ["deepNesting"] = ("response_format.json_schema.schema.items.items", "invalid_value"),
            ["hugeEnum"] = ("response_format.json_schema.schema", "invalid_value"),
            ["wideAnyOf"] = ("response_format.json_schema.schema.anyOf", "invalid_value"),
        };
        foreach (var (name, (param, code)) in expected)
        {
            var outcome = outcomes.GetProperty(name);
            var error = outcome.GetProperty("error");
            Assert.True(error.ValueKind == JsonValueKind.Object, $"{name} was accepted: {outcome}");
            Assert.True(error.GetProperty("status").GetInt32() == 400, $"{name}: {outcome}");
            Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
            Assert.True(error.GetProperty("param").GetString()?.StartsWith(param, StringComparison.Ordinal) == true, $"{name}: {outcome}");
            Assert.True(error.GetProperty("code").GetString() == code, $"{name}: {outcome}");
            Assert.True(outcome.GetProperty("servedAfter").GetBoolean(), name);
        }
    }

    [Fact]
    public async Task Grpc_generate_with_a_json_schema_returns_a_valid_document()
    {
        const string schema = """{"type":"object","properties":{"answer":{"enum":["yes","no"]},"score":{"type":"integer"}},"required":["answer","score"],"additionalProperties":false}""";
        var result = await ServeClients.GrpcAsync(Server, "generate", new() { ["PROMPT_IDS"] = "[5,6,7]", ["MAX_TOKENS"] = "32", ["JSON_SCHEMA"] = schema });
        Assert.Equal("stop", result.GetProperty("finish").GetString());
        using var document = JsonDocument.Parse(result.GetProperty("text").GetString()!);
        Assert.Contains(document.RootElement.GetProperty("answer").GetString(), new[] { "yes", "no" });
        Assert.Equal(JsonValueKind.Number, document.RootElement.GetProperty("score").ValueKind);
    }
}
