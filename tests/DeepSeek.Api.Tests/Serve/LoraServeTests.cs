using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using DeepSeek.Api.Tests.Infrastructure;
using DeepSeek.Runtime.Grpc.V1;
using DeepSeek.Testing;
using Grpc.Core;
using Grpc.Net.Client;
using static DeepSeek.Api.Tests.Serve.ServeClients;

namespace DeepSeek.Api.Tests.Serve;

/// <summary>
/// One <c>serve</c> on the embedded tiny model with a LoRA adapter from the start and run-time updates
/// on (<c>--lora-modules attn=DIR --enable-lora-updates true</c>); the adapter folders are written by
/// <see cref="LoraFolders"/> before it starts and deleted after it stops.
/// </summary>
public sealed class LoraServe : IAsyncLifetime
{
    public string Root { get; } = Directory.CreateTempSubdirectory("deepseek-lora-serve-").FullName;

    public ServeProcess Server { get; private set; } = null!;

    /// <summary>The model the embedded one was copied from, beside the runtime's build output.</summary>
    public static string BaseDir => Path.Combine(Path.GetDirectoryName(ServeProcess.RuntimeDll)!, "models", ServeProcess.ModelName);

    public string Folder(LoraFolders.Spec spec, Action<JsonObject>? edit = null, string? name = null) =>
        LoraFolders.WriteAdapter(BaseDir, spec, Path.Combine(Root, name ?? spec.Name), edit);

    public async Task InitializeAsync()
    {
        var attention = Folder(LoraFolders.AttentionR4);
        Server = await ServeProcess.StartAsync("--lora-modules", $"attn={attention}", "--enable-lora-updates", "true", "--max-loras", "2", "--max-lora-rank", "8");
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        Directory.Delete(Root, recursive: true);
    }
}

/// <summary>LoRA adapters over the real server: picked by <c>model</c>, listed with <c>parent</c>, loaded and unloaded at run time.</summary>
public sealed class LoraServeTests(LoraServe shared) : IClassFixture<LoraServe>
{
    private ServeProcess Server => shared.Server;

    private async Task<(HttpStatusCode Status, string Body)> PostAsync(string path, string json)
    {
        using var response = await Server.Http.PostAsync(new Uri(path, UriKind.Relative), Json(json));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Greedy token ids of a completion on <paramref name="model"/>.</summary>
    private async Task<int[]> GreedyAsync(string model, int[] prompt)
    {
        var (status, body) = await PostAsync("/v1/completions",
            $$"""{"model":"{{model}}","prompt":{{JsonSerializer.Serialize(prompt)}},"max_tokens":8,"temperature":0,"logprobs":0,"return_tokens_as_token_ids":true}""");
        Assert.True(status == HttpStatusCode.OK, $"{(int)status}: {body}");
        var root = JsonDocument.Parse(body).RootElement;
        Assert.Equal(model, root.GetProperty("model").GetString());
        return [.. root.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("tokens").EnumerateArray()
            .Select(t => int.Parse(t.GetString()!["token_id:".Length..], System.Globalization.CultureInfo.InvariantCulture))];
    }

    private static readonly int[] Prompt = [5, 17, 42, 99, 3, 61, 120, 7, 33];

    [Fact]
    public async Task Models_lists_the_adapter_with_its_parent_and_a_request_naming_it_gets_its_tokens()
    {
        var models = JsonDocument.Parse(await Server.Http.GetStringAsync(new Uri("/v1/models", UriKind.Relative))).RootElement.GetProperty("data");
        var attn = models.EnumerateArray().Single(m => m.GetProperty("id").GetString() == "attn");
        Assert.Equal(ServeProcess.ModelName, attn.GetProperty("parent").GetString());
        Assert.False(models[0].TryGetProperty("parent", out _));
        var retrieved = JsonDocument.Parse(await Server.Http.GetStringAsync(new Uri("/v1/models/attn", UriKind.Relative))).RootElement;
        Assert.Equal(ServeProcess.ModelName, retrieved.GetProperty("parent").GetString());

        var adapted = await GreedyAsync("attn", Prompt);
        Assert.NotEqual(await GreedyAsync(ServeProcess.ModelName, Prompt), adapted);
        Assert.Equal(adapted, await GreedyAsync("attn", Prompt));

        // The official SDK picks the adapter by model on the chat endpoint, streamed.
        var chat = await OpenAiAsync(Server.HttpUrl, "attn", "unused", "chatStream");
        Assert.InRange(chat.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), 1, 12);
        var ids = (await OpenAiAsync(Server.HttpUrl, "attn", "unused", "models")).GetProperty("ids").EnumerateArray().Select(i => i.GetString()).ToList();
        Assert.Contains("attn", ids);

        // Its requests carry its name as the model label of the request metrics.
        var metrics = await Server.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Matches(new Regex("deepseek_generation_tokens_total\\{[^}]*model=\"attn\""), metrics);
    }

    [Fact]
    public async Task Grpc_generate_takes_an_adapter_by_name()
    {
        using var channel = GrpcChannel.ForAddress($"http://{Server.GrpcAddress}");
        var client = new OpenAi.GrpcBadInputTests.InferenceCalls(channel.CreateCallInvoker());
        async Task<int[]> Generate(string adapter)
        {
            var request = new GenerateRequest { TokenIds = new TokenIds(), Sampling = new SamplingOptions { MaxTokens = 8, Temperature = 0 }, Adapter = adapter };
            request.TokenIds.Ids.Add(Prompt);
            using var call = client.Generate(request, new Metadata());
            var tokens = new List<int>();
            await foreach (var response in call.ResponseStream.ReadAllAsync()) tokens.AddRange(response.Tokens.Select(t => t.TokenId));
            return [.. tokens];
        }
        Assert.Equal(await GreedyAsync("attn", Prompt), await Generate("attn"));
        Assert.Equal(await GreedyAsync(ServeProcess.ModelName, Prompt), await Generate(""));
        var missing = await Assert.ThrowsAsync<RpcException>(() => Generate("nope"));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        Assert.Contains("'nope'", missing.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Adapters_load_and_unload_at_run_time_and_a_bad_folder_is_refused_while_serving_goes_on()
    {
        var mlp = shared.Folder(LoraFolders.MlpR8Rslora);
        var dora = shared.Folder(LoraFolders.MlpR8Rslora, c => c["use_dora"] = true, "dora");

        var (status, body) = await PostAsync("/v1/load_lora_adapter", $$"""{"lora_name":"mlp","lora_path":{{JsonSerializer.Serialize(mlp)}}}""");
        Assert.True(status == HttpStatusCode.OK, body);
        Assert.Contains("mlp", body, StringComparison.Ordinal);
        var tokens = await GreedyAsync("mlp", Prompt);

        (status, body) = await PostAsync("/v1/load_lora_adapter", $$"""{"lora_name":"mlp","lora_path":{{JsonSerializer.Serialize(mlp)}}}""");
        AssertError(status, body, HttpStatusCode.BadRequest, "lora_name", "already been loaded");
        (status, body) = await PostAsync("/v1/load_lora_adapter", $$"""{"lora_name":"dora","lora_path":{{JsonSerializer.Serialize(dora)}}}""");
        AssertError(status, body, HttpStatusCode.BadRequest, "lora_path", "DoRA");
        (status, body) = await PostAsync("/v1/load_lora_adapter", $$"""{"lora_name":"gone","lora_path":{{JsonSerializer.Serialize(Path.Combine(shared.Root, "nowhere"))}}}""");
        AssertError(status, body, HttpStatusCode.BadRequest, "lora_path", "does not exist");
        (status, body) = await PostAsync("/v1/load_lora_adapter", """{"lora_name":"x"}""");
        AssertError(status, body, HttpStatusCode.BadRequest, "lora_path", "lora_path is required");

        // Still serving, the adapter loaded before the refusals included.
        Assert.Equal(tokens, await GreedyAsync("mlp", Prompt));

        (status, body) = await PostAsync("/v1/unload_lora_adapter", """{"lora_name":"mlp"}""");
        Assert.True(status == HttpStatusCode.OK, body);
        (status, body) = await PostAsync("/v1/unload_lora_adapter", """{"lora_name":"mlp"}""");
        AssertError(status, body, HttpStatusCode.NotFound, "lora_name", "cannot be found");
        (status, body) = await PostAsync("/v1/completions", """{"model":"mlp","prompt":[1,2,3],"max_tokens":2}""");
        AssertError(status, body, HttpStatusCode.NotFound, "model", "'mlp' does not exist");
        Assert.DoesNotContain("\"mlp\"", await Server.Http.GetStringAsync(new Uri("/v1/models", UriKind.Relative)), StringComparison.Ordinal);
    }

    private static void AssertError(HttpStatusCode status, string body, HttpStatusCode expected, string param, string message)
    {
        Assert.True(status == expected, $"{(int)status}: {body}");
        var error = JsonDocument.Parse(body).RootElement.GetProperty("error");
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Contains(message, error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }
}
