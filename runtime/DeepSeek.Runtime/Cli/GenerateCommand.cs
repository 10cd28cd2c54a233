using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSeek.Engine;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Quantization;
using DeepSeek.Model.Tokenization;
using DeepSeek.Runtime.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace DeepSeek.Runtime.Cli;

/// <summary><c>generate</c>: one prompt, one continuation through the serving engine, printed as text or as one JSON line.</summary>
public static class GenerateCommand
{
    public static Command Build()
    {
        var model = ModelOptions.Model();
        var prompt = new Option<string?>("--prompt") { Description = "Prompt text (encoded with the model's tokenizer.json; BOS is prepended)." };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "Prompt as comma-separated token ids, used as given." };
        var maxNewTokens = new Option<int>("--max-new-tokens") { Description = "Tokens to generate (fewer if the end-of-sentence token comes).", DefaultValueFactory = _ => 16 };
        var temperature = new Option<double>("--temperature") { Description = "0 is greedy; higher samples more freely.", DefaultValueFactory = _ => 0.0 };
        var topP = new Option<double>("--top-p") { Description = "Nucleus sampling mass in (0, 1].", DefaultValueFactory = _ => 1.0 };
        var topK = new Option<int>("--top-k") { Description = "Sample among the k most likely tokens (0: all).", DefaultValueFactory = _ => 0 };
        var seed = new Option<long?>("--seed") { Description = "Seed that makes sampling reproducible." };
        var output = new Option<string>("--output") { Description = "text, or json: the last stdout line is one JSON object.", DefaultValueFactory = _ => "text" };
        output.AcceptOnlyFromAmong("text", "json");
        var logprobs = new Option<int>("--logprobs") { Description = "With --output json: log-probabilities of each generated token and its K best alternatives.", DefaultValueFactory = _ => 0 };
        var device = ModelOptions.Device();
        var dtype = ModelOptions.DType();
        var quantization = ModelOptions.Quantization();
        var cudaGraphs = ModelOptions.CudaGraphs();
        var threads = ModelOptions.Threads();

        var command = new Command("generate", "Generate a continuation of one prompt.")
        {
            model, prompt, promptIds, maxNewTokens, temperature, topP, topK, seed, output, logprobs, device, dtype, quantization, cudaGraphs, threads,
        };
        command.Validators.Add(result =>
        {
            if ((result.GetValue(prompt) is null) == (result.GetValue(promptIds) is null))
                result.AddError("Give exactly one of --prompt or --prompt-ids.");
            if (result.GetValue(maxNewTokens) < 0) result.AddError("--max-new-tokens must not be negative.");
            if (result.GetValue(logprobs) < 0) result.AddError("--logprobs must not be negative.");
        });
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var directory = parse.GetValue(model)!;
                var folder = ModelFolder.Open(directory, DTypeNames.Parse(parse.GetValue(dtype)!), WeightQuantization.Parse(parse.GetValue(quantization)!));
                var (config, tokenizer) = (folder.Config, folder.Tokenizer);
                var ids = parse.GetValue(prompt) is { } text
                    ? EncodePrompt(text, tokenizer ?? throw new ArgumentException($"{directory} has no tokenizer.json; give --prompt-ids instead of --prompt."), config)
                    : ParseIds(parse.GetValue(promptIds)!);
                var newTokens = parse.GetValue(maxNewTokens);
                var topLogprobs = parse.GetValue(logprobs);
                var sampling = new SamplingParameters
                {
                    Temperature = (float)parse.GetValue(temperature),
                    TopP = (float)parse.GetValue(topP),
                    TopK = parse.GetValue(topK),
                    Seed = parse.GetValue(seed) is { } value ? unchecked((ulong)value) : null,
                    MaxTokens = newTokens > 0 ? newTokens : null,
                    Logprobs = topLogprobs > 0 ? topLogprobs : null,
                };
                // Before the load, so a bad value costs no minutes of loading; the engine checks the prompt.
                new RequestValidator(config.VocabSize, config.MaxPositionEmbeddings).CheckSampling(sampling, RequestFields.Completions);

                using var metrics = new EngineMetrics("generate");
                // The load's progress and the engine's own lines go to stderr: stdout carries only the result.
                using var loggers = LoggerFactory.Create(logging => logging
                    .AddSimpleConsole(format => format.SingleLine = true)
                    .Services.Configure<ConsoleLoggerOptions>(console => console.LogToStandardErrorThreshold = LogLevel.Trace));
                var cpu = CpuThreads.ForThisProcess(parse.GetValue(threads));
                cpu.Apply();
                HostingExtensions.LogCpuThreads(loggers.CreateLogger("DeepSeek.Runtime"), cpu);
                await using var engine = await EngineService.StartEngineAsync(folder, OneRequest(ids.Length, newTokens, parse.GetValue(device)!) with { CudaGraphs = parse.GetValue(cudaGraphs) }, metrics,
                    engineLogger: loggers.CreateLogger("DeepSeek.Engine"));
                var result = newTokens == 0 ? new GeneratedSequence() : await RunAsync(engine, ids, sampling, cancellationToken);

                if (parse.GetValue(output) == "json") Console.Out.WriteLine(ToJson(result, topLogprobs > 0));
                else Console.Out.WriteLine(result.Text);
                return 0;
            }
            catch (Exception e) when (e is ArgumentException or ConfigException or CheckpointFormatException or InvalidOperationException
                                          or NotSupportedException or FileNotFoundException or FormatException or InvalidRequestException)
            {
                Console.Error.WriteLine($"generate: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    /// <summary>
    /// Room for this one request only: its prompt in one prefill step (as a contiguous forward would
    /// run it) and KV blocks for prompt plus output, not a share of the device's memory.
    /// </summary>
    internal static EngineOptions OneRequest(int promptTokens, int newTokens, string device)
    {
        const int blockSize = 16;
        return new EngineOptions
        {
            ServedModelName = "generate",
            Device = device,
            MaxRunningRequests = 1,
            MaxQueuedRequests = 1,
            MaxBatchTokens = Math.Max(promptTokens, 1),
            BlockSize = blockSize,
            KvCacheBlocks = ((promptTokens + newTokens + blockSize - 1) / blockSize) + 1,
            EnablePrefixCaching = false,
        };
    }

    private static async Task<GeneratedSequence> RunAsync(InferenceEngine engine, int[] prompt, SamplingParameters sampling, CancellationToken cancellationToken)
    {
        var handle = engine.Submit(prompt, sampling, cancellationToken);
        var result = new GeneratedSequence();
        await foreach (var item in handle.Events.ReadAllAsync(CancellationToken.None))
        {
            if (item.TokenId is { } token) result.TokenIds.Add(token);
            if (item.Logprobs is { } logprobs) result.Logprobs.Add(logprobs);
            result.Text += item.TextDelta;
            if (item.FinishReason == FinishReason.Error) throw new InvalidOperationException(item.ErrorMessage ?? "The engine failed.");
            if (item.FinishReason == FinishReason.Cancelled) throw new OperationCanceledException("generate was cancelled.");
        }
        return result;
    }

    internal static int[] EncodePrompt(string text, BpeTokenizer tokenizer, DeepSeekConfig config)
    {
        var ids = tokenizer.Encode(text).ToList();
        if (config.BosTokenId is { } bos && (ids.Count == 0 || ids[0] != bos)) ids.Insert(0, bos);
        return ids.ToArray();
    }

    internal static int[] ParseIds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException("--prompt-ids needs at least one token id, such as 1,2,3.");
        return parts.Select(part => int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var id) && id >= 0
            ? id
            : throw new ArgumentException($"--prompt-ids: \"{part}\" is not a token id (a non-negative integer).")).ToArray();
    }

    internal static string ToJson(GeneratedSequence result, bool withLogprobs)
    {
        var json = new JsonObject
        {
            ["token_ids"] = new JsonArray(result.TokenIds.Select(id => (JsonNode)id).ToArray()),
            ["text"] = result.Text,
        };
        if (withLogprobs)
        {
            json["logprobs"] = new JsonArray(result.Logprobs.Select(lp => (JsonNode)new JsonObject
            {
                ["token_id"] = lp.Chosen.TokenId,
                ["logprob"] = lp.Chosen.Logprob,
                ["top"] = new JsonArray(lp.Top.Select(t => (JsonNode)new JsonObject { ["token_id"] = t.TokenId, ["logprob"] = t.Logprob }).ToArray()),
            }).ToArray());
        }
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
    }
}
