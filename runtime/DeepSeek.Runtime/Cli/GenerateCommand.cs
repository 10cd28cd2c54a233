using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Devices;
using DeepSeek.Model.Generation;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tokenization;

namespace DeepSeek.Runtime.Cli;

/// <summary><c>generate</c>: one prompt, one continuation, printed as text or as one JSON line.</summary>
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

        var command = new Command("generate", "Generate a continuation of one prompt.")
        {
            model, prompt, promptIds, maxNewTokens, temperature, topP, topK, seed, output, logprobs, device, dtype,
        };
        command.Validators.Add(result =>
        {
            if ((result.GetValue(prompt) is null) == (result.GetValue(promptIds) is null))
                result.AddError("Give exactly one of --prompt or --prompt-ids.");
            if (result.GetValue(maxNewTokens) < 0) result.AddError("--max-new-tokens must not be negative.");
            if (result.GetValue(logprobs) < 0) result.AddError("--logprobs must not be negative.");
        });
        command.SetAction((parse, _) =>
        {
            try
            {
                var directory = parse.GetValue(model)!;
                var config = DeepSeekConfig.Load(directory);
                var tokenizerPath = Path.Combine(directory, "tokenizer.json");
                var tokenizer = File.Exists(tokenizerPath) ? BpeTokenizer.Load(tokenizerPath) : null;
                var ids = parse.GetValue(prompt) is { } text
                    ? EncodePrompt(text, tokenizer ?? throw new ArgumentException($"{directory} has no tokenizer.json; give --prompt-ids instead of --prompt."), config)
                    : ParseIds(parse.GetValue(promptIds)!);

                var sampling = new SamplingOptions(parse.GetValue(temperature), parse.GetValue(topP), parse.GetValue(topK), parse.GetValue(seed));
                sampling.Validate();
                var torchDevice = TorchRuntime.Resolve(parse.GetValue(device)!);
                using var loaded = DeepSeekForCausalLM.Load(directory, ModelOptions.ParseDType(parse.GetValue(dtype)!), torchDevice);
                long[] stop = config.EosTokenId is { } eos ? [eos] : [];
                var result = new SequenceGenerator(loaded).Generate(ids, parse.GetValue(maxNewTokens), sampling, parse.GetValue(logprobs), stop);
                var generatedText = tokenizer?.Decode(result.TokenIds.Select(id => (int)id), skipSpecialTokens: true) ?? "";

                if (parse.GetValue(output) == "json") Console.Out.WriteLine(ToJson(result, generatedText));
                else Console.Out.WriteLine(generatedText);
                return Task.FromResult(0);
            }
            catch (Exception e) when (e is ArgumentException or ConfigException or CheckpointFormatException or InvalidOperationException
                                          or NotSupportedException or FileNotFoundException or FormatException)
            {
                Console.Error.WriteLine($"generate: {e.Message}");
                return Task.FromResult(1);
            }
        });
        return command;
    }

    internal static long[] EncodePrompt(string text, BpeTokenizer tokenizer, DeepSeekConfig config)
    {
        var ids = tokenizer.Encode(text).Select(id => (long)id).ToList();
        if (config.BosTokenId is { } bos && (ids.Count == 0 || ids[0] != bos)) ids.Insert(0, bos);
        return ids.ToArray();
    }

    internal static long[] ParseIds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException("--prompt-ids needs at least one token id, such as 1,2,3.");
        return parts.Select(part => long.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var id) && id >= 0
            ? id
            : throw new ArgumentException($"--prompt-ids: \"{part}\" is not a token id (a non-negative integer).")).ToArray();
    }

    internal static string ToJson(GenerationResult result, string text)
    {
        var json = new JsonObject
        {
            ["token_ids"] = new JsonArray(result.TokenIds.Select(id => (JsonNode)id).ToArray()),
            ["text"] = text,
        };
        if (result.Logprobs is { } logprobs)
        {
            json["logprobs"] = new JsonArray(logprobs.Select(lp => (JsonNode)new JsonObject
            {
                ["token_id"] = lp.TokenId,
                ["logprob"] = lp.Logprob,
                ["top"] = new JsonArray(lp.Top.Select(t => (JsonNode)new JsonObject { ["token_id"] = t.TokenId, ["logprob"] = t.Logprob }).ToArray()),
            }).ToArray());
        }
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
    }
}
