using System.Text;
using System.Text.Json;
using DeepSeek.Api.Tests.Infrastructure;

namespace DeepSeek.Api.Tests.Serve;

/// <summary>The real clients and plain HTTP calls the serve tests drive the server with.</summary>
public static class ServeClients
{
    public static Task<JsonElement> OpenAiAsync(ServeProcess server, string scenario, string apiKey = "unused", Dictionary<string, string>? extra = null, TimeSpan? timeout = null) =>
        OpenAiAsync(server.HttpUrl, ServeProcess.ModelName, apiKey, scenario, extra, timeout);

    /// <summary>The official openai SDK against any server of these tests; the scenario's deadline (default 120 s) scales with <c>TEST_TIME_SCALE</c>.</summary>
    public static async Task<JsonElement> OpenAiAsync(string httpUrl, string model, string apiKey, string scenario, Dictionary<string, string>? extra = null, TimeSpan? timeout = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["BASE_URL"] = httpUrl + "/v1",
            ["API_KEY"] = apiKey,
            ["MODEL"] = model,
            ["SCENARIO"] = scenario,
        };
        foreach (var (name, value) in extra ?? []) environment[name] = value;
        var budget = DeepSeek.Testing.TestTime.Budget(timeout ?? TimeSpan.FromSeconds(120));
        // The SDK's own per-request timeout is the same budget: one slow request must not fail a scenario given longer.
        environment["SCENARIO_BUDGET_MS"] = ((long)budget.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var output = await ExternalTool.RunNodeAsync("openai-client.mjs", environment, budget);
        return JsonDocument.Parse(output).RootElement;
    }

    public static Task<JsonElement> GrpcAsync(ServeProcess server, string scenario, Dictionary<string, string>? extra = null, string apiKey = "unused") =>
        GrpcAsync(server.GrpcAddress, scenario, extra, apiKey);

    /// <summary>grpc-js on the project's proto against any server of these tests.</summary>
    public static async Task<JsonElement> GrpcAsync(string grpcAddress, string scenario, Dictionary<string, string>? extra = null, string apiKey = "unused")
    {
        var environment = new Dictionary<string, string>
        {
            ["GRPC_ADDRESS"] = grpcAddress,
            ["API_KEY"] = apiKey,
            ["PROTO"] = ExternalTool.ProtoPath,
            ["SCENARIO"] = scenario,
        };
        foreach (var (name, value) in extra ?? []) environment[name] = value;
        var output = await ExternalTool.RunNodeAsync("grpc-client.mjs", environment, TimeSpan.FromSeconds(120));
        return JsonDocument.Parse(output).RootElement;
    }

    public static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    /// <summary>Greedy <c>/v1/completions</c> on token ids; returns the generated ids (from <c>return_tokens_as_token_ids</c>) and the choice.</summary>
    public static async Task<(int[] Ids, JsonElement Choice)> GreedyCompletionAsync(ServeProcess server, IReadOnlyList<int> prompt, int maxTokens)
    {
        using var response = await server.Http.PostAsync(new Uri("/v1/completions", UriKind.Relative), Json(
            $$"""{"model":"{{ServeProcess.ModelName}}","prompt":{{JsonSerializer.Serialize(prompt)}},"max_tokens":{{maxTokens}},"temperature":0,"logprobs":0,"return_tokens_as_token_ids":true}"""));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
        var choice = JsonDocument.Parse(body).RootElement.GetProperty("choices")[0].Clone();
        var ids = choice.GetProperty("logprobs").GetProperty("tokens").EnumerateArray()
            .Select(t => int.Parse(t.GetString()!["token_id:".Length..], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return (ids, choice);
    }
}
