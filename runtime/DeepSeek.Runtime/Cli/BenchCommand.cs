using System.Collections.Concurrent;
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using DeepSeek.Engine;
using DeepSeek.Engine.Execution;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Engine.Text;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Runtime.Hosting;
using DeepSeek.Model.Devices;
using DeepSeek.Model.Lora;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Quantization;
using DeepSeek.Runtime.Bench;
using Spectre.Console;

namespace DeepSeek.Runtime.Cli;

/// <summary><c>bench</c>: offline engine throughput in-process, on a checkpoint or a random-weight model of a named shape; or, with <c>--url</c>, a running server over HTTP.</summary>
public static class BenchCommand
{
    public const int DefaultPromptTokens = 256;
    public const int DefaultOutputTokens = 48;

    /// <summary>
    /// Prompt and output lengths: the ones given, else the defaults shortened to fit the model's context
    /// (output to at most a quarter of it, the prompt to the rest), so that a plain <c>bench</c> runs on
    /// any model, the embedded 256-token one included. Given lengths that do not fit are refused later.
    /// </summary>
    public static (int Prompt, int Output) Lengths(int? context, int? prompt, int? output)
    {
        if (context is not { } window) return (prompt ?? DefaultPromptTokens, output ?? DefaultOutputTokens);
        var outputTokens = output ?? Math.Clamp(window / 4, 2, DefaultOutputTokens);
        var promptTokens = prompt ?? Math.Clamp(window - outputTokens, 1, DefaultPromptTokens);
        return (promptTokens, outputTokens);
    }

    /// <summary>The served model's context (<c>max_model_len</c> of <c>GET /v1/models</c>), if the server says it.</summary>
    private static async Task<int?> ServedContextAsync(HttpClient http, Uri baseUrl, string? apiKey, string served, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(baseUrl, "v1/models"));
        if (apiKey is not null) request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", apiKey);
        using var response = await http.SendAsync(request, cancellationToken);
        if (!response.IsSuccessStatusCode) return null;
        using var models = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
        if (!models.RootElement.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array) return null;
        foreach (var entry in data.EnumerateArray())
        {
            if (entry.TryGetProperty("id", out var id) && id.GetString() == served
                && entry.TryGetProperty("max_model_len", out var length) && length.TryGetInt32(out var context)) return context;
        }
        return null;
    }

    public static Command Build()
    {
        var shape = new Option<string?>("--shape") { Description = $"Random-weight model of this shape instead of a checkpoint: {string.Join(", ", ModelShapes.Names)}." };
        shape.AcceptOnlyFromAmong([.. ModelShapes.Names]);
        var model = new Option<string?>("--model") { Description = "Model folder (Hugging Face layout); default without --shape: the embedded tiny model. With --url: the served model's name (default: the first of GET /v1/models)." };
        var url = new Option<string?>("--url") { Description = "Benchmark a running OpenAI-compatible server at this address (http://HOST:PORT) instead of the engine in-process; --batches are then numbers of concurrent clients." };
        var apiKey = new Option<string?>("--api-key") { Description = "Bearer token for --url.", DefaultValueFactory = _ => EnvironmentDefault.GetString("--api-key") };
        var requestsPerClient = new Option<int>("--requests-per-client") { Description = "With --url: streamed completions each client sends, one after another.", DefaultValueFactory = _ => 4 };
        var layers = new Option<int?>("--layers") { Description = "Keep only the first N decoder layers (shorter random-weight models)." };
        var batches = new Option<string>("--batches") { Description = "Comma-separated batch sizes, one run and one row each.", DefaultValueFactory = _ => "1,8,32" };
        var promptTokens = new Option<int?>("--prompt-tokens") { Description = $"Random prompt tokens per request. Default: {DefaultPromptTokens}, less where the model's context is shorter." };
        var outputTokens = new Option<int?>("--output-tokens") { Description = $"Generated tokens per request (greedy, end-of-sequence ignored). Default: {DefaultOutputTokens}, less where the model's context is shorter." };
        var bandwidth = new Option<double>("--bandwidth-gbs") { Description = "Device memory bandwidth in GB/s for the decode floor (H100 SXM: about 3000).", DefaultValueFactory = _ => 3000 };
        var seed = new Option<int>("--seed") { Description = "Seed of the random weights and prompts.", DefaultValueFactory = _ => 0 };
        var json = new Option<string?>("--json") { Description = "Also write the rows as JSON to this file." };
        var loraAdapters = new Option<int>("--lora-adapters")
        {
            Description = "Also run every batch size with this many random LoRA adapters of --lora-rank on every adaptable projection (attention and MLPs), each request on a different one, beside the base model alone.",
            DefaultValueFactory = _ => 0,
        };
        var loraRank = new Option<int>("--lora-rank") { Description = "Rank of the --lora-adapters.", DefaultValueFactory = _ => 16 };
        var recordMargins = new Option<bool>("--record-margins") { Description = "Keep each generated token's logit margin over the runner-up (top-2 log-probabilities) in --json, for comparing two configurations' greedy tokens (scripts/gpu/compare_greedy.py)." };
        var structuredShare = new Option<double>("--structured-share")
        {
            Description = "Also run every batch size with this share of its requests (rounded up) decoding under a JSON schema (response_format json_schema, constrained decoding), the rest unconstrained in the same steps, beside the plain run. The vocabulary is the checkpoint's tokenizer, or a synthetic byte-level one of the model's size for --shape.",
            DefaultValueFactory = _ => 0,
        };
        var teacherTokens = new Option<string?>("--teacher-tokens")
        {
            Description = "Instead of timing: decode the prompts and tokens of this `bench --record-margins --json` file on this model, step by step on the file's own tokens, "
                + "and count the steps whose greedy token is the file's (comparing two configurations of the same weights without one near-tie changing the rest of the text).",
        };
        var maxBatchTokens = new Option<int?>("--max-batch-tokens") { Description = "Tokens per forward pass: prompts longer than this prefill in chunks, so memory follows the chunk, not the prompt. Default: the whole batch's prompts in one step, as the peer measures." };
        var device = ModelOptions.Device();
        var dtype = ModelOptions.DType();
        var quantization = ModelOptions.Quantization();
        var cudaGraphs = ModelOptions.CudaGraphs();
        var threads = ModelOptions.Threads();

        var command = new Command("bench", "Engine throughput: prefill and decode tokens/s, time to first token and inter-token latency per batch size.")
        {
            shape, model, layers, batches, promptTokens, outputTokens, bandwidth, seed, json, maxBatchTokens, device, dtype, quantization, cudaGraphs, threads, url, apiKey, requestsPerClient,
            loraAdapters, loraRank, structuredShare, recordMargins, teacherTokens,
            NativeBenchCommand.Build(),
            StructuredBenchCommand.Build(),
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(shape) is not null && result.GetValue(model) is not null) result.AddError("Give --shape or --model, not both.");
            if (result.GetValue(url) is not null && (result.GetValue(shape) is not null || result.GetValue(layers) is not null))
                result.AddError("--url benchmarks a running server; --shape and --layers make an in-process model. Give one or the other.");
        });
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                // Checked here, not in a validator: validators see no default values.
                if (parse.GetValue(layers) is < 1) throw new ArgumentException("--layers must be at least 1.");
                if (parse.GetValue(promptTokens) is < 1) throw new ArgumentException("--prompt-tokens must be at least 1.");
                if (parse.GetValue(maxBatchTokens) is < 1) throw new ArgumentException("--max-batch-tokens must be at least 1.");
                if (parse.GetValue(outputTokens) is < 2) throw new ArgumentException("--output-tokens must be at least 2 (decode needs tokens after the first).");
                if (parse.GetValue(bandwidth) <= 0) throw new ArgumentException("--bandwidth-gbs must be positive.");
                if (parse.GetValue(loraAdapters) < 0) throw new ArgumentException("--lora-adapters must be 0 or more.");
                if (parse.GetValue(loraRank) < 1) throw new ArgumentException("--lora-rank must be at least 1.");
                if (parse.GetValue(structuredShare) is < 0 or > 1) throw new ArgumentException("--structured-share must be between 0 and 1.");
                var sizes = ParseBatches(parse.GetValue(batches)!);
                if (parse.GetValue(url) is { } urlText)
                {
                    if (!Uri.TryCreate(urlText, UriKind.Absolute, out var serverUrl) || serverUrl.Scheme is not ("http" or "https"))
                        throw new ArgumentException($"--url must be an absolute address such as http://127.0.0.1:8000, not \"{urlText}\".");
                    if (parse.GetValue(requestsPerClient) < 1) throw new ArgumentException("--requests-per-client must be at least 1.");
                    return await RunHttpAsync(serverUrl, parse.GetValue(apiKey), parse.GetValue(model), sizes, parse.GetValue(requestsPerClient),
                        parse.GetValue(promptTokens), parse.GetValue(outputTokens), parse.GetValue(seed), parse.GetValue(json), cancellationToken);
                }
                var config = parse.GetValue(shape) is { } shapeName
                    ? ModelShapes.Get(shapeName, ModelOptions.EmbeddedModelDirectory)
                    : DeepSeekConfig.Load(parse.GetValue(model) ?? ModelOptions.EmbeddedModelDirectory);
                if (parse.GetValue(layers) is { } keep) config = config with { NumHiddenLayers = Math.Min(keep, config.NumHiddenLayers) };
                var (prompt, output) = Lengths(config.MaxPositionEmbeddings, parse.GetValue(promptTokens), parse.GetValue(outputTokens));
                if (prompt + output > config.MaxPositionEmbeddings)
                    throw new ArgumentException($"--prompt-tokens + --output-tokens ({prompt + output}) exceed the model's context of {config.MaxPositionEmbeddings}.");
                var scalar = DTypeNames.Parse(parse.GetValue(dtype)!);
                var weights = WeightQuantization.Parse(parse.GetValue(quantization)!);
                weights.CheckDType(scalar);
                var deviceName = parse.GetValue(device)!;
                var seedValue = parse.GetValue(seed);
                var maxBatch = sizes.Max();
                var blockSize = EngineOptions.Defaults.BlockSize;
                var options = new EngineOptions
                {
                    ServedModelName = "bench",
                    Device = deviceName,
                    MaxRunningRequests = maxBatch,
                    MaxQueuedRequests = maxBatch,
                    // One prefill step for a whole batch, as the peer's single forward over all prompts.
                    MaxBatchTokens = parse.GetValue(maxBatchTokens) ?? Math.Max(maxBatch * prompt, 256),
                    KvCacheBlocks = maxBatch * ((prompt + output + blockSize - 1) / blockSize) + 1,
                    BlockSize = blockSize,
                    EnablePrefixCaching = false,
                    CudaGraphs = parse.GetValue(cudaGraphs),
                };

                DecodeFloor? floor = null;
                long residentBytes = 0;
                var checkpoint = parse.GetValue(model);
                var steps = new ConcurrentQueue<StepTiming>();
                using var metrics = new EngineMetrics("bench");
                // In-process only: with --url the server chose its own.
                var cpu = CpuThreads.ForThisProcess(parse.GetValue(threads));
                cpu.Apply();
                AnsiConsole.MarkupLine($"[grey]{Markup.Escape(cpu.ToString())}[/]");
                var rows = new List<BenchResult>();
                var adapterCount = parse.GetValue(loraAdapters);
                var share = parse.GetValue(structuredShare);
                // The model as the timed runs load it: a random-weight shape or a checkpoint, FP8-resident or int4 when asked.
                DeepSeekForCausalLM BuildModel()
                {
                    var torchDevice = TorchRuntime.Resolve(deviceName);
                    var built = checkpoint is null && parse.GetValue(shape) is not null
                        ? DeepSeekForCausalLM.CreateRandom(config, scalar, torchDevice, seedValue)
                        : LoadShortened(checkpoint ?? ModelOptions.EmbeddedModelDirectory, config, scalar, torchDevice, weights);
                    try
                    {
                        if (weights.IsFp8) Fp8Residency.Quantize(built, built.Config.Quantization ?? Fp8Residency.Published);
                        else Int4Quantization.Apply(built, weights, line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]"));
                    }
                    catch
                    {
                        built.Dispose();
                        throw;
                    }
                    floor = DecodeFloor.Of(built);
                    residentBytes = built.ResidentBytes;
                    return built;
                }

                if (parse.GetValue(teacherTokens) is { } referencePath)
                    return await TeacherForcedAsync(referencePath, BuildModel, weights.Name, parse.GetValue(json), cancellationToken);

                // The base model alone first; with --lora-adapters, then the same rows with every request on its own adapter;
                // with --structured-share, then the same rows with that share of each batch constrained.
                await RunVariantAsync(null, adapterCount > 0 || share > 0 ? "base" : null);
                if (adapterCount > 0)
                {
                    var rank = parse.GetValue(loraRank);
                    AnsiConsole.MarkupLine($"[grey]Making {adapterCount} random LoRA adapters of rank {rank} on every adaptable projection…[/]");
                    var adapters = RandomAdapters(config, adapterCount, rank, seedValue);
                    await RunVariantAsync(adapters, $"{adapterCount} LoRA r{rank}");
                }
                if (share > 0)
                {
                    var load = StructuredBenchCommand.Load(config, parse.GetValue(shape) is null ? checkpoint ?? ModelOptions.EmbeddedModelDirectory : null, share, seedValue);
                    await RunVariantAsync(null, string.Create(CultureInfo.InvariantCulture, $"{share * 100:0.#}% structured ({load.SchemaName})"), load);
                }

                async Task RunVariantAsync(LoraAdapterSet? adapters, string? variant, StructuredLoad? structured = null)
                {
                    AnsiConsole.MarkupLine($"[grey]Loading {(checkpoint is null ? $"a random-weight {Markup.Escape(parse.GetValue(shape) ?? "tiny")} model" : Markup.Escape(checkpoint))} ({config.NumHiddenLayers} layers, {scalar}) on {Markup.Escape(deviceName)}{(variant is null ? "" : $" for {Markup.Escape(variant)}")}…[/]");
                    var engineOptions = adapters is null ? options : options with { MaxLoras = adapters.All.Count, MaxLoraRank = adapters.MaxRank };
                    await using var engine = await InferenceEngine.StartAsync(engineOptions, BuildModel, new DelegateTokenDecoder(_ => ""), metrics, onStep: steps.Enqueue, adapters: adapters);
                    AnsiConsole.MarkupLine($"[grey]Model ready in {engine.ModelLoadTime.TotalSeconds:0.0} s; weights {weights}, {residentBytes / (1024.0 * 1024 * 1024):0.00} GiB resident; KV cache {engine.NumKvBlocks} blocks of {blockSize}.[/]");

                    await engine.WarmUpAsync();
                    var benchmark = new EngineBenchmark(engine, steps, config.VocabSize, seedValue, adapters?.All, structured, parse.GetValue(recordMargins));
                    await benchmark.RunAsync(1, Math.Min(prompt, 16), 2, floor!, 1, _ => { }); // first real steps, not reported

                    await AnsiConsole.Progress()
                        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                        .StartAsync(async context =>
                        {
                            foreach (var size in sizes)
                            {
                                cancellationToken.ThrowIfCancellationRequested();
                                var task = context.AddTask($"{(variant is null ? "" : variant + ", ")}batch {size}", maxValue: size * output);
                                rows.Add(await benchmark.RunAsync(size, prompt, output, floor!, parse.GetValue(bandwidth), n => task.Increment(n)) with { Variant = variant });
                                task.StopTask();
                            }
                        });
                }

                // Redirected output (a log, CI) would otherwise wrap the table at 80 columns.
                if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 220;
                AnsiConsole.Write(Render(rows, parse.GetValue(bandwidth)));
                if (parse.GetValue(json) is { } path)
                {
                    var report = new BenchReport(parse.GetValue(shape), checkpoint, config.NumHiddenLayers, deviceName,
                        parse.GetValue(dtype), weights.Name, residentBytes, parse.GetValue(bandwidth), rows);
                    await File.WriteAllTextAsync(path, JsonSerializer.Serialize(report, BenchJsonContext.Default.BenchReport), cancellationToken);
                }
                return 0;
            }
            catch (Exception e) when (e is ArgumentException or ConfigException or CheckpointFormatException or InvalidOperationException
                                          or NotSupportedException or FileNotFoundException or DirectoryNotFoundException or FormatException)
            {
                Console.Error.WriteLine($"bench: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    /// <summary>
    /// <c>bench --teacher-tokens</c>: this model decodes a reference run's prompts and tokens step by step
    /// (<see cref="TeacherForcedAgreement"/>), one row per batch of the reference that recorded its prompts.
    /// </summary>
    private static async Task<int> TeacherForcedAsync(string referencePath, Func<DeepSeekForCausalLM> buildModel, string quantization, string? jsonPath,
        CancellationToken cancellationToken)
    {
        BenchReport reference;
        try
        {
            reference = JsonSerializer.Deserialize(await File.ReadAllTextAsync(referencePath, cancellationToken), BenchJsonContext.Default.BenchReport)
                ?? throw new FormatException("it is empty");
        }
        catch (JsonException e)
        {
            throw new FormatException($"--teacher-tokens: {referencePath} is not a `bench --json` report: {e.Message}", e);
        }
        var batches = reference.Rows.Where(r => r.PromptTokenIds is { Count: > 0 } && r.Variant is null or "base").ToList();
        if (batches.Count == 0)
            throw new ArgumentException($"--teacher-tokens: {referencePath} has no rows with prompts; make it with `bench --record-margins --json`.");

        AnsiConsole.MarkupLine($"[grey]Loading the model ({Markup.Escape(quantization)}) to decode the tokens of {Markup.Escape(referencePath)} ({Markup.Escape(reference.Quantization)})…[/]");
        using var model = buildModel();
        var rows = new List<TeacherForcedRow>(batches.Count);
        foreach (var batch in batches)
        {
            cancellationToken.ThrowIfCancellationRequested();
            rows.Add(TeacherForcedAgreement.Run(model, batch.PromptTokenIds!, batch.TokenIds));
        }

        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 220;
        var table = new Table().Title($"greedy tokens on the reference's tokens ({Markup.Escape(quantization)} against {Markup.Escape(reference.Quantization)})")
            .AddColumn("batch").AddColumn("steps").AddColumn("equal").AddColumn("share equal").AddColumn("median margin (equal)").AddColumn("widest margin (different)");
        foreach (var row in rows)
            table.AddRow(row.Requests.ToString(CultureInfo.InvariantCulture), row.Steps.ToString(CultureInfo.InvariantCulture),
                row.EqualSteps.ToString(CultureInfo.InvariantCulture), ((double)row.EqualSteps / row.Steps).ToString("P1", CultureInfo.InvariantCulture),
                row.MedianMargin.ToString("0.0000", CultureInfo.InvariantCulture),
                row.Disagreements.Count == 0 ? "-" : row.Disagreements.Max(d => d.Margin).ToString("0.0000", CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
        if (jsonPath is not null)
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(new TeacherForcedReport(referencePath, quantization, rows), BenchJsonContext.Default.TeacherForcedReport),
                cancellationToken);
        return 0;
    }

    /// <summary>
    /// <c>bench --url</c>: closed-loop clients per concurrency level against a running server. Prompt
    /// ids stay below 256, the smallest vocabulary of the models served here: <c>/v1/models</c> does not
    /// say the vocabulary size.
    /// </summary>
    private static async Task<int> RunHttpAsync(Uri url, string? apiKey, string? model, int[] levels, int requestsPerClient,
        int? promptOption, int? outputOption, int seed, string? jsonPath, CancellationToken cancellationToken)
    {
        const int promptIdBound = 256;
        var baseUrl = new Uri(url.GetLeftPart(UriPartial.Authority) + "/");
        using var http = new HttpClient(HttpLoadBenchmark.Handler(levels.Max())) { Timeout = TimeSpan.FromMinutes(10) };
        string served;
        try
        {
            served = model ?? await HttpLoadBenchmark.FirstModelAsync(http, baseUrl, apiKey, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new InvalidOperationException($"Cannot reach {baseUrl}: {e.Message}. Is the server running, and is --url right?", e);
        }
        var (promptTokens, outputTokens) = Lengths(await ServedContextAsync(http, baseUrl, apiKey, served, cancellationToken), promptOption, outputOption);
        AnsiConsole.MarkupLine($"[grey]Model {Markup.Escape(served)} at {Markup.Escape(baseUrl.ToString())}; prompt token ids below {promptIdBound} (/v1/models does not give the vocabulary size).[/]");
        var benchmark = new HttpLoadBenchmark(http, baseUrl, apiKey, served, promptIdBound, seed);

        // One request first, not reported: connection set-up and the server's first steps stay out of the numbers.
        var warm = await benchmark.SendAsync(Enumerable.Range(0, promptTokens).Select(i => i % promptIdBound).ToArray(), outputTokens, cancellationToken);
        if (!warm.Succeeded) throw new InvalidOperationException($"The warm-up request failed ({warm.Failure}): {warm.Detail}");

        var rows = new List<HttpBenchResult>();
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async context =>
            {
                foreach (var level in levels)
                {
                    var task = context.AddTask($"{level} client(s)", maxValue: level * requestsPerClient);
                    var run = await benchmark.RunLevelAsync(level, requestsPerClient, promptTokens, outputTokens, () => task.Increment(1), cancellationToken);
                    rows.Add(HttpBenchResult.From(run));
                    task.StopTask();
                }
            });

        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 220;
        AnsiConsole.Write(RenderHttp(rows, promptTokens, outputTokens));
        foreach (var row in rows.Where(r => r.Failures.Count > 0))
            Console.Error.WriteLine($"bench: {row.Concurrency} client(s): {row.Requests - row.Succeeded} of {row.Requests} requests failed.");
        if (jsonPath is not null)
        {
            var report = new HttpBenchReport(baseUrl.ToString(), served, promptTokens, outputTokens, requestsPerClient, promptIdBound, rows);
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(report, BenchJsonContext.Default.HttpBenchReport), cancellationToken);
        }
        return rows.All(r => r.Failures.Count == 0) ? 0 : 2;
    }

    private static Table RenderHttp(IEnumerable<HttpBenchResult> rows, int promptTokens, int outputTokens)
    {
        static string F(double value, string format = "N1") => value.ToString(format, CultureInfo.InvariantCulture);
        static string P(double p50, double p90, double p99, string format) => $"{F(p50, format)} / {F(p90, format)} / {F(p99, format)}";
        var table = new Table().Title($"server over HTTP ({promptTokens} prompt, {outputTokens} output tokens per request)")
            .AddColumn("clients").AddColumn("requests ok").AddColumn("failures").AddColumn("req/s").AddColumn("output tok/s")
            .AddColumn("TTFT p50/p90/p99 ms").AddColumn("ITL p50/p90/p99 ms").AddColumn("e2e p50/p90/p99 ms");
        foreach (var r in rows)
            table.AddRow(
                r.Concurrency.ToString(CultureInfo.InvariantCulture), $"{r.Succeeded}/{r.Requests}",
                r.Failures.Count == 0 ? "0" : Markup.Escape(string.Join(", ", r.Failures.Select(f => $"{f.Key} ×{f.Value}"))),
                F(r.RequestsPerSecond, "N2"), F(r.OutputTokensPerSecond),
                P(r.TtftP50Ms, r.TtftP90Ms, r.TtftP99Ms, "N1"), P(r.ItlP50Ms, r.ItlP90Ms, r.ItlP99Ms, "N2"), P(r.E2eP50Ms, r.E2eP90Ms, r.E2eP99Ms, "N1"));
        return table;
    }

    /// <summary>A checkpoint's model, with only the first layers when the config was shortened.</summary>
    /// <summary>A checkpoint as serve loads it: an FP8 one with <c>--quantization fp8</c> keeps its own bytes and scales.</summary>
    private static DeepSeekForCausalLM LoadShortened(string directory, DeepSeekConfig config, TorchSharp.torch.ScalarType dtype, TorchSharp.torch.Device device,
        WeightQuantization weights)
    {
        var full = DeepSeekConfig.Load(directory);
        var (beforeLoad, afterLoad) = Fp8Residency.Passes(weights, directory, full);
        if (full.NumHiddenLayers == config.NumHiddenLayers)
            return DeepSeekForCausalLM.Load(directory, dtype, device, beforeLoad, afterLoad, log: line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]"));
        throw new ArgumentException("--layers shortens random-weight models only (--shape); a checkpoint runs all its layers.");
    }

    internal static int[] ParseBatches(string text)
    {
        var sizes = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(part => int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var size) && size >= 1
                ? size
                : throw new ArgumentException($"--batches: \"{part}\" is not a batch size (a positive integer)."))
            .ToArray();
        return sizes.Length > 0 ? sizes : throw new ArgumentException("--batches needs at least one batch size, such as 1,8,32.");
    }

    /// <summary>
    /// <paramref name="count"/> adapters of rank <paramref name="rank"/> on every projection <paramref name="config"/>'s
    /// model adapts, with small random weights (their values do not change the timing), alpha 2·rank.
    /// </summary>
    private static LoraAdapterSet RandomAdapters(DeepSeekConfig config, int count, int rank, int seed)
    {
        var targets = LoraTargets.Of(config);
        var set = new LoraAdapterSet("bench", targets, rank, updatable: false);
        var random = new Random(seed);
        float[] Values(long n)
        {
            var values = new float[n];
            for (var i = 0; i < n; i++) values[i] = (random.NextSingle() - 0.5f) * 0.02f;
            return values;
        }
        for (var a = 0; a < count; a++)
        {
            var modules = targets.Supported.ToDictionary(t => t.Key, t => new LoraWeights(rank, (int)t.Value.In, (int)t.Value.Out, Values(rank * t.Value.In), Values(rank * t.Value.Out)));
            set.Add(LoraAdapter.FromWeights($"bench-{a}", 2.0 * rank, useRslora: false, modules, targets, rank));
        }
        return set;
    }

    private static Table Render(IEnumerable<BenchResult> rows, double bandwidth)
    {
        static string F(double value, string format = "N1") => value.ToString(format, CultureInfo.InvariantCulture);
        var variants = rows.Any(r => r.Variant is not null);
        var constrained = rows.Any(r => r.ConstrainedRequests > 0);
        var table = new Table().Title("engine throughput");
        if (variants) table.AddColumn("model");
        if (constrained) table.AddColumn("constrained").AddColumn("mask ms/decode step");
        table.AddColumn("batch").AddColumn("prefill tok/s").AddColumn("prefill steps").AddColumn("decode tok/s").AddColumn("decode ms/step")
            .AddColumn("TTFT p50/p90/p99 ms").AddColumn("ITL p50/p90/p99 ms").AddColumn($"floor ms/step @ {F(bandwidth, "N0")} GB/s").AddColumn("floor decode tok/s");
        foreach (var r in rows)
            table.AddRow([
                .. variants ? [Markup.Escape(r.Variant ?? "")] : Array.Empty<string>(),
                .. constrained ? [$"{r.ConstrainedRequests}/{r.Batch}", F(r.MaskMsPerDecodeStep, "N3")] : Array.Empty<string>(),
                r.Batch.ToString(CultureInfo.InvariantCulture), F(r.PrefillTokensPerSecond), r.PrefillSteps.ToString(CultureInfo.InvariantCulture),
                F(r.DecodeTokensPerSecond), F(r.DecodeMsPerStep, "N2"),
                $"{F(r.TtftP50Ms)} / {F(r.TtftP90Ms)} / {F(r.TtftP99Ms)}", $"{F(r.ItlP50Ms, "N2")} / {F(r.ItlP90Ms, "N2")} / {F(r.ItlP99Ms, "N2")}",
                F(r.FloorMsPerStep, "N4"), F(r.FloorDecodeTokensPerSecond)]);
        return table;
    }
}
