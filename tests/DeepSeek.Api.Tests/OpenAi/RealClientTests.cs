using System.Text.Json;
using DeepSeek.Api.Tests.Backend;
using DeepSeek.Api.Tests.Infrastructure;
using DeepSeek.Runtime.Serving;

namespace DeepSeek.Api.Tests.OpenAi;

/// <summary>The official openai npm SDK and @grpc/grpc-js against the real server.</summary>
public sealed class RealClientTests : IAsyncLifetime
{
    private RunningServer _server = null!;

    public async Task InitializeAsync() => _server = await RunningServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static readonly ChatMessage[] Conversation = [new(ChatRole.System, "be brief"), new(ChatRole.User, "hello")];

    private string ExpectedChat(int maxTokens) =>
        TestBackend.ExpectedText(_server.Backend.ApplyChatTemplate(Conversation), new SamplingParameters { MaxTokens = maxTokens });

    private async Task<JsonElement> OpenAiAsync(string scenario)
    {
        var output = await ExternalTool.RunNodeAsync("openai-client.mjs", new Dictionary<string, string>
        {
            ["BASE_URL"] = _server.HttpUrl + "/v1",
            ["API_KEY"] = RunningServer.Key,
            ["MODEL"] = _server.Backend.Model.ServedName,
            ["SCENARIO"] = scenario,
        }, TimeSpan.FromSeconds(60));
        return JsonDocument.Parse(output).RootElement;
    }

    [Fact]
    public async Task Chat_returns_the_backends_tokens_and_usage()
    {
        var result = await OpenAiAsync("chat");
        Assert.Equal(ExpectedChat(12), result.GetProperty("content").GetString());
        Assert.Equal("length", result.GetProperty("finish").GetString());
        var promptTokens = _server.Backend.ApplyChatTemplate(Conversation).Length;
        Assert.Equal(promptTokens, result.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(12, result.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(promptTokens + 12, result.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Chat_streaming_gives_the_same_text_and_usage_at_the_end()
    {
        var result = await OpenAiAsync("chatStream");
        Assert.Equal(ExpectedChat(12), result.GetProperty("content").GetString());
        Assert.Equal("length", result.GetProperty("finish").GetString());
        Assert.Equal(12, result.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        // Role chunk, one per token, the finish chunk and the usage chunk.
        Assert.Equal(1 + 12 + 1 + 1, result.GetProperty("chunks").GetInt32());
    }

    [Fact]
    public async Task Completions_on_token_id_lists_return_logprobs_per_token()
    {
        var result = await OpenAiAsync("completionsLogprobs");
        var choices = result.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal(2, choices.Count);
        int[][] prompts = [[1, 2, 3, 4], [5, 6, 7]];
        for (var i = 0; i < 2; i++)
        {
            var expected = TestBackend.ExpectedText(prompts[i], new SamplingParameters { MaxTokens = 5 });
            Assert.Equal(i, choices[i].GetProperty("index").GetInt32());
            Assert.Equal(expected, choices[i].GetProperty("text").GetString());
            var logprobs = choices[i].GetProperty("logprobs");
            Assert.Equal(expected.Select(c => c.ToString()), logprobs.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()));
            Assert.Equal(new[] { -0.25f, -0.5f, -0.75f, -0.25f, -0.5f }, logprobs.GetProperty("token_logprobs").EnumerateArray().Select(v => v.GetSingle()));
            Assert.All(logprobs.GetProperty("top_logprobs").EnumerateArray(), top => Assert.Equal(2, top.EnumerateObject().Count()));
            Assert.Equal(new[] { 0, 1, 2, 3, 4 }, logprobs.GetProperty("text_offset").EnumerateArray().Select(v => v.GetInt32()));
        }
        Assert.Equal(7, result.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(10, result.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Models_lists_the_served_model()
    {
        var result = await OpenAiAsync("models");
        Assert.Equal(["deepseek-test"], result.GetProperty("ids").EnumerateArray().Select(id => id.GetString()));
    }

    [Fact]
    public async Task Embeddings_in_base64_and_float_match_the_backends_vectors()
    {
        var result = await OpenAiAsync("embeddings");
        var base64 = result.GetProperty("base64").EnumerateArray().ToList();
        string[] texts = ["hello", "world"];
        for (var i = 0; i < 2; i++)
            Assert.Equal(TestBackend.Embed(_server.Backend.Encode(texts[i], addSpecialTokens: true)), base64[i].EnumerateArray().Select(v => v.GetSingle()));
        var floats = result.GetProperty("floats").EnumerateArray().Single();
        var expected = TestBackend.Embed([1, 2, 3]);
        Assert.Equal(expected.Length, floats.GetArrayLength());
        Assert.All(floats.EnumerateArray().Zip(expected), pair => Assert.Equal(pair.Second, pair.First.GetSingle(), 1e-6f));
        Assert.Equal(6 + 6, result.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Grpc_generate_streams_the_same_tokens_as_http_completions()
    {
        int[] prompt = [10, 20, 30, 40];
        using var http = await _server.Http.PostAsync(new Uri("/v1/completions", UriKind.Relative), new StringContent(
            """{"model":"deepseek-test","prompt":[10,20,30,40],"max_tokens":9,"temperature":0,"logprobs":0,"return_tokens_as_token_ids":true}""",
            System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(System.Net.HttpStatusCode.OK, http.StatusCode);
        var choice = JsonDocument.Parse(await http.Content.ReadAsStringAsync()).RootElement.GetProperty("choices")[0];
        var httpIds = choice.GetProperty("logprobs").GetProperty("tokens").EnumerateArray().Select(t => int.Parse(t.GetString()!["token_id:".Length..])).ToList();

        var output = await ExternalTool.RunNodeAsync("grpc-client.mjs", new Dictionary<string, string>
        {
            ["GRPC_ADDRESS"] = _server.GrpcAddress,
            ["API_KEY"] = RunningServer.Key,
            ["PROTO"] = ExternalTool.ProtoPath,
            ["SCENARIO"] = "generate",
            ["PROMPT_IDS"] = JsonSerializer.Serialize(prompt),
            ["MAX_TOKENS"] = "9",
        }, TimeSpan.FromSeconds(60));
        var grpc = JsonDocument.Parse(output).RootElement;
        var grpcIds = grpc.GetProperty("tokenIds").EnumerateArray().Select(v => v.GetInt32()).ToList();

        Assert.Equal(9, grpcIds.Count);
        Assert.Equal(httpIds, grpcIds);
        Assert.Equal(choice.GetProperty("text").GetString(), grpc.GetProperty("text").GetString());
        Assert.Equal("length", grpc.GetProperty("finish").GetString());
        Assert.Equal(4, grpc.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Grpc_health_says_serving()
    {
        var output = await ExternalTool.RunNodeAsync("grpc-client.mjs", new Dictionary<string, string>
        {
            ["GRPC_ADDRESS"] = _server.GrpcAddress,
            ["PROTO"] = ExternalTool.ProtoPath,
            ["SCENARIO"] = "health",
        }, TimeSpan.FromSeconds(60));
        Assert.Equal("SERVING", JsonDocument.Parse(output).RootElement.GetProperty("status").GetString());
    }
}
