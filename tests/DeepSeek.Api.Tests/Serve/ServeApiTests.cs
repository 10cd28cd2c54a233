using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using DeepSeek.Api.Tests.Infrastructure;
using DeepSeek.Model.Tokenization;

namespace DeepSeek.Api.Tests.Serve;

/// <summary>
/// The real <c>serve</c> process on the embedded tiny model, driven by the official openai SDK,
/// grpc-js and promtool; generations are checked against the fixture's Hugging Face reference.
/// </summary>
public sealed partial class ServeApiTests(SharedServe shared) : IClassFixture<SharedServe>
{
    private ServeProcess Server => shared.Server;

    private static string FixtureDir => Path.Combine(ExternalTool.RepoRoot, "tests", "fixtures", "deepseek-v3-tiny");

    /// <summary>The metric names of the design contract, as the Prometheus exporter writes them.</summary>
    public static readonly string[] DesignMetricNames =
    [
        "deepseek_requests_waiting", "deepseek_requests_running", "deepseek_kv_cache_usage_ratio",
        "deepseek_prompt_tokens_total", "deepseek_generation_tokens_total",
        "deepseek_request_success_total", "deepseek_request_failure_total",
        "deepseek_time_to_first_token_seconds", "deepseek_inter_token_latency_seconds", "deepseek_e2e_request_latency_seconds",
        "deepseek_queue_time_seconds", "deepseek_prefix_cache_queries_total", "deepseek_prefix_cache_hits_total",
        "deepseek_expert_tokens_total", "deepseek_expert_load_imbalance_ratio", "deepseek_model_load_seconds",
    ];

    public static TheoryData<int> ReferencePrompts()
    {
        var data = new TheoryData<int>();
        var count = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDir, "reference.json"))).RootElement.GetProperty("prompts").GetArrayLength();
        for (var i = 0; i < count; i++) data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(ReferencePrompts))]
    public async Task Greedy_completions_equal_the_reference_generation(int index)
    {
        var prompt = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDir, "reference.json"))).RootElement.GetProperty("prompts")[index];
        var input = prompt.GetProperty("input_ids").EnumerateArray().Select(v => v.GetInt32()).ToArray();
        var greedy = prompt.GetProperty("greedy").EnumerateArray().Select(v => v.GetInt32()).ToArray();
        var margins = prompt.GetProperty("greedy_margins").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        // Past a near-tie the argmax may flip on rounding; compare up to the first one.
        var reliable = Array.FindIndex(margins, m => m < 1e-3) is var tie and >= 0 ? tie : greedy.Length;
        Assert.True(reliable > 0, "The reference has no reliable greedy token.");

        var (ids, choice) = await ServeClients.GreedyCompletionAsync(Server, input, reliable);

        Assert.Equal(greedy[..reliable], ids);
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Openai_chat_streamed_and_not_equal_greedy_completion_of_the_chat_template()
    {
        var tokenizer = BpeTokenizer.Load(Path.Combine(FixtureDir, "tokenizer.json"));
        var prompt = tokenizer.Encode(ChatTemplate.Render([new ChatMessage("system", "be brief"), new ChatMessage("user", "hello")])).ToArray();
        var (ids, choice) = await ServeClients.GreedyCompletionAsync(Server, prompt, 12);

        var chat = await ServeClients.OpenAiAsync(Server, "chat");
        var stream = await ServeClients.OpenAiAsync(Server, "chatStream");

        Assert.Equal(12, ids.Length);
        Assert.Equal(choice.GetProperty("text").GetString(), chat.GetProperty("content").GetString());
        Assert.Equal(tokenizer.Decode(ids, skipSpecialTokens: true), chat.GetProperty("content").GetString());
        Assert.Equal("length", chat.GetProperty("finish").GetString());
        Assert.Equal(prompt.Length, chat.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(12, chat.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        Assert.Equal(chat.GetProperty("content").GetString(), stream.GetProperty("content").GetString());
        Assert.Equal("length", stream.GetProperty("finish").GetString());
        Assert.Equal(prompt.Length, stream.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(12, stream.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Openai_completions_on_token_id_lists_give_greedy_tokens_with_their_logprobs()
    {
        var result = await ServeClients.OpenAiAsync(Server, "completionsLogprobs");
        var choices = result.GetProperty("choices").EnumerateArray().ToList();
        int[][] prompts = [[1, 2, 3, 4], [5, 6, 7]];
        Assert.Equal(2, choices.Count);
        for (var i = 0; i < 2; i++)
        {
            var (ids, alone) = await ServeClients.GreedyCompletionAsync(Server, prompts[i], 5);
            Assert.Equal(i, choices[i].GetProperty("index").GetInt32());
            Assert.Equal(alone.GetProperty("text").GetString(), choices[i].GetProperty("text").GetString());
            var logprobs = choices[i].GetProperty("logprobs");
            var chosen = logprobs.GetProperty("token_logprobs").EnumerateArray().Select(v => v.GetDouble()).ToList();
            var tops = logprobs.GetProperty("top_logprobs").EnumerateArray().ToList();
            Assert.Equal(5, chosen.Count);
            for (var t = 0; t < 5; t++)
            {
                var alternatives = tops[t].EnumerateObject().Select(p => p.Value.GetDouble()).ToList();
                Assert.InRange(alternatives.Count, 1, 2);
                Assert.All(alternatives, lp => Assert.True(lp <= 0));
                // Greedy picks the most likely token: its log-probability is the best alternative's.
                Assert.Equal(alternatives.Max(), chosen[t], 4);
            }
            Assert.Equal(alone.GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray().Select(v => Math.Round(v.GetDouble(), 4)),
                chosen.Select(v => Math.Round(v, 4)));
            Assert.Equal(5, ids.Length);
        }
        Assert.Equal(7, result.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(10, result.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Openai_models_lists_the_embedded_model()
    {
        var result = await ServeClients.OpenAiAsync(Server, "models");
        Assert.Equal([ServeProcess.ModelName], result.GetProperty("ids").EnumerateArray().Select(id => id.GetString()));
    }

    [Fact]
    public async Task Openai_embeddings_are_unit_vectors_of_the_hidden_size_independent_of_the_batch()
    {
        var result = await ServeClients.OpenAiAsync(Server, "embeddings");
        var base64 = result.GetProperty("base64").EnumerateArray().Select(v => v.EnumerateArray().Select(x => x.GetDouble()).ToArray()).ToList();
        var floats = result.GetProperty("floats").EnumerateArray().Single().EnumerateArray().Select(x => x.GetDouble()).ToArray();
        var hidden = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDir, "config.json"))).RootElement.GetProperty("hidden_size").GetInt32();
        Assert.Equal(2, base64.Count);
        foreach (var vector in base64.Append(floats))
        {
            Assert.Equal(hidden, vector.Length);
            Assert.Equal(1.0, Math.Sqrt(vector.Sum(x => x * x)), 4);
        }
        Assert.True(base64[0].Zip(base64[1]).Sum(p => p.First * p.Second) < 0.9999, "Different texts gave the same embedding.");

        // The same input alone and inside a batch: the same vector.
        using var response = await Server.Http.PostAsync(new Uri("/v1/embeddings", UriKind.Relative), ServeClients.Json(
            $$"""{"model":"{{ServeProcess.ModelName}}","input":[[9,9,9,9],[1,2,3],[200]]}"""));
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var inBatch = body.GetProperty("data")[1].GetProperty("embedding").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        Assert.All(inBatch.Zip(floats), p => Assert.Equal(p.Second, p.First, 5));
        Assert.Equal(8, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Grpc_generate_streams_the_same_tokens_as_http()
    {
        int[] prompt = [84, 241, 105, 133, 218, 136, 83];
        var (httpIds, choice) = await ServeClients.GreedyCompletionAsync(Server, prompt, 9);
        var grpc = await ServeClients.GrpcAsync(Server, "generate", new()
        {
            ["PROMPT_IDS"] = JsonSerializer.Serialize(prompt),
            ["MAX_TOKENS"] = "9",
        });
        Assert.Equal(httpIds, grpc.GetProperty("tokenIds").EnumerateArray().Select(v => v.GetInt32()));
        Assert.Equal(choice.GetProperty("text").GetString(), grpc.GetProperty("text").GetString());
        Assert.Equal("length", grpc.GetProperty("finish").GetString());
        Assert.Equal(prompt.Length, grpc.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Grpc_health_says_serving()
    {
        var health = await ServeClients.GrpcAsync(Server, "health");
        Assert.Equal("SERVING", health.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Metrics_have_every_design_name_once_with_the_model_label_and_pass_promtool()
    {
        var promtool = ExternalTool.Require("promtool", "scripts/setup/prometheus.sh");
        // One request first, so the histograms and counters have samples.
        _ = await ServeClients.GreedyCompletionAsync(Server, [1, 2, 3], 3);
        var text = await Server.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative));

        foreach (var name in DesignMetricNames)
        {
            Assert.True(Regex.Count(text, $"^# TYPE {name} ", RegexOptions.Multiline) == 1, $"{name} is not declared exactly once:\n{text}");
            var samples = Regex.Matches(text, $"^{name}(_bucket|_sum|_count)?\\{{[^}}]*\\}} ", RegexOptions.Multiline);
            Assert.NotEmpty(samples);
            Assert.All(samples, s => Assert.Contains($"model=\"{ServeProcess.ModelName}\"", s.Value, StringComparison.Ordinal));
        }
        var waiting = Regex.Matches(text, "^deepseek_requests_waiting\\{", RegexOptions.Multiline);
        Assert.Single(waiting);

        var (exitCode, stdout, stderr) = await ExternalTool.RunAsync(new ProcessStartInfo(promtool, ["check", "metrics"]), text, TimeSpan.FromSeconds(30));
        Assert.True(exitCode == 0, $"promtool check metrics failed:\n{stdout}\n{stderr}\n{text}");
    }
}
