using System.CommandLine;
using DeepSeek.Model.Quantization;
using DeepSeek.Runtime.Hosting;
using DeepSeek.Runtime.Serving;

namespace DeepSeek.Runtime.Cli;

/// <summary><c>serve</c>: the long-running server a pod runs.</summary>
public static class ServeCommand
{
    /// <summary>The engine's defaults are written once, in <see cref="DeepSeek.Engine.EngineOptions"/>; the flags fall back to them.</summary>
    private static DeepSeek.Engine.EngineOptions Defaults => DeepSeek.Engine.EngineOptions.Defaults;

    public static Command Build()
    {
        var host = new Option<string>("--host")
        {
            Description = "Address to bind (IP address or localhost). Env: DEEPSEEK_HOST.",
            DefaultValueFactory = _ => EnvironmentDefault.GetString("--host") ?? "0.0.0.0",
        };
        var httpPort = PortOption("--http-port", 8000, "HTTP port: OpenAI API, /health, /ready, /metrics.");
        var grpcPort = PortOption("--grpc-port", 50051, "gRPC port: inference, health, reflection.");
        var apiKey = new Option<string?>("--api-key")
        {
            Description = "Require 'Authorization: Bearer <key>' on /v1/* and gRPC Inference; visible in ps, prefer --api-key-file. Env: DEEPSEEK_API_KEY.",
            DefaultValueFactory = _ => EnvironmentDefault.GetString("--api-key"),
        };
        var apiKeyFile = new Option<string?>("--api-key-file")
        {
            Description = "File whose first line is the API key (a mounted Secret). Env: DEEPSEEK_API_KEY_FILE.",
            DefaultValueFactory = _ => EnvironmentDefault.GetString("--api-key-file"),
        };
        var maxRequestBytes = new Option<long>("--max-request-bytes")
        {
            Description = "Largest HTTP request body; larger ones get 413. Env: DEEPSEEK_MAX_REQUEST_BYTES.",
            DefaultValueFactory = _ => EnvironmentDefault.Get("--max-request-bytes", 8L * 1024 * 1024),
        };

        var model = ModelOptions.Model();
        var servedName = new Option<string?>("--served-name")
        {
            Description = "Model name clients use and the metrics' model label. Default: the model folder's name. Env: DEEPSEEK_SERVED_NAME.",
            DefaultValueFactory = _ => EnvironmentDefault.GetString("--served-name"),
        };
        var device = ModelOptions.Device();
        var dtype = ModelOptions.DType();
        var quantization = ModelOptions.Quantization();
        var cudaGraphs = ModelOptions.CudaGraphs();
        var maxRunning = IntOption("--max-running-requests", Defaults.MaxRunningRequests, "Requests decoded together at most (the batch).");
        var maxQueued = IntOption("--max-queued-requests", Defaults.MaxQueuedRequests, "Requests waiting at most; more are refused with 429 / RESOURCE_EXHAUSTED.", minimum: 0);
        var maxBatchTokens = IntOption("--max-batch-tokens", Defaults.MaxBatchTokens, "Tokens (prefill chunks and decodes) in one forward pass.");
        var kvBlocks = OptionalIntOption("--kv-cache-blocks", "KV-cache blocks; wins over --kv-cache-memory-fraction.");
        var kvFraction = new Option<double>("--kv-cache-memory-fraction")
        {
            Description = "Share of the device memory free after loading the weights that the KV cache takes (CPU: of the memory available to the process). Env: DEEPSEEK_KV_CACHE_MEMORY_FRACTION.",
            DefaultValueFactory = _ => EnvironmentDefault.Get("--kv-cache-memory-fraction", Defaults.KvCacheMemoryFraction),
        };
        var blockSize = IntOption("--block-size", Defaults.BlockSize, "Tokens per KV-cache block.");
        var maxContext = OptionalIntOption("--max-context-length", "Longest prompt plus completion in tokens; default and upper bound: the model's max_position_embeddings.");
        var prefixCaching = new Option<bool>("--prefix-caching")
        {
            Description = "Reuse the KV cache of shared prompt prefixes (true or false). Env: DEEPSEEK_PREFIX_CACHING.",
            DefaultValueFactory = _ => EnvironmentDefault.Get("--prefix-caching", Defaults.EnablePrefixCaching),
        };
        var drainTimeout = new Option<double>("--drain-timeout")
        {
            Description = "Seconds in-flight requests may take to finish after SIGTERM before they are cancelled. Env: DEEPSEEK_DRAIN_TIMEOUT.",
            DefaultValueFactory = _ => EnvironmentDefault.Get("--drain-timeout", 30.0),
        };

        // The expert-parallel group (one replica over several processes); world size 1 is no group.
        var rank = IntOption("--rank", 0, "This process's rank in its expert-parallel group; 0 is the leader that serves the APIs.", minimum: 0);
        var worldSize = IntOption("--world-size", 1, "Ranks in the expert-parallel group (1: no expert parallelism).");
        var peers = new Option<string?>("--peers")
        {
            Description = "Every rank's expert address host:port, comma-separated in rank order. Env: DEEPSEEK_PEERS.",
            DefaultValueFactory = _ => EnvironmentDefault.GetString("--peers"),
        };
        var expertPort = PortOption("--expert-port", 50052, "Where a rank listens for its leader (deepseek.runtime.v1.Experts).");
        var expertTransport = new Option<string?>("--expert-transport")
        {
            Description = "How ranks exchange routed tokens: grpc or nccl (default: nccl on CUDA, grpc on CPU; nccl needs CUDA and the native helper). Env: DEEPSEEK_EXPERT_TRANSPORT.",
            DefaultValueFactory = _ => EnvironmentDefault.GetString("--expert-transport"),
        };
        var groupTokenFile = new Option<string?>("--group-token-file")
        {
            Description = "File whose first line is the group's shared secret; ranks refuse Experts calls without it. Env: DEEPSEEK_GROUP_TOKEN holds the token itself.",
            DefaultValueFactory = _ => EnvironmentDefault.GetString("--group-token-file"),
        };
        var redundantExperts = IntOption("--redundant-experts", 0, "Extra copies of the hottest experts per MoE layer, spread over the ranks.", minimum: 0);
        var localRanks = IntOption("--local-ranks", 1,
            "Ranks this pod runs, one serve process per GPU, started and supervised here (exits when one dies). With L > 1: --world-size counts all ranks, "
            + "--rank is the pod's index (its ranks are rank·L … rank·L+L−1), --peers lists one address per pod, and local rank i gets cuda:i and every base port + 10·i.");
        var rebalanceInterval = new Option<double>("--rebalance-interval-seconds")
        {
            Description = $"The leader recomputes the expert placement from the observed load every this many seconds and moves experts between steps (0: never). Env: {EnvironmentDefault.VariableFor("--rebalance-interval-seconds")}.",
            DefaultValueFactory = _ => EnvironmentDefault.Get("--rebalance-interval-seconds", 0.0),
        };

        var command = new Command("serve", "Serve the model over HTTP (OpenAI-compatible) and gRPC.")
        {
            host, httpPort, grpcPort, apiKey, apiKeyFile, maxRequestBytes, model, servedName, device, dtype, quantization, cudaGraphs, maxRunning, maxQueued, maxBatchTokens, maxContext,
            kvBlocks, kvFraction, blockSize, prefixCaching, drainTimeout, rank, worldSize, peers, expertPort, expertTransport, groupTokenFile, redundantExperts, localRanks,
            rebalanceInterval,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (parse.GetValue(localRanks) > 1)
            {
                IReadOnlyList<LocalRank> plan;
                string rankPeers;
                try
                {
                    plan = LocalRankPlan.For(parse.GetValue(localRanks), parse.GetValue(rank), parse.GetValue(worldSize), parse.GetValue(device)!,
                        parse.GetValue(httpPort), parse.GetValue(grpcPort), parse.GetValue(expertPort));
                    rankPeers = LocalRankPlan.RankPeers(Experts.ExpertParallelSettings.ParsePeers(parse.GetValue(peers)), parse.GetValue(localRanks), parse.GetValue(worldSize));
                }
                catch (ArgumentException e)
                {
                    Console.Error.WriteLine($"serve: {e.Message}");
                    return 1;
                }
                var arguments = Environment.GetCommandLineArgs().SkipWhile(a => a != "serve").Skip(1).ToList();
                return await LocalRankSupervisor.RunAsync(plan, parse.GetValue(worldSize), rankPeers, arguments, TimeSpan.FromSeconds(Math.Max(0, parse.GetValue(drainTimeout))));
            }
            var directory = parse.GetValue(model)!;
            var options = new DeepSeek.Engine.EngineOptions
            {
                ServedModelName = parse.GetValue(servedName) ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(directory)),
                Device = parse.GetValue(device)!,
                MaxRunningRequests = parse.GetValue(maxRunning),
                MaxQueuedRequests = parse.GetValue(maxQueued),
                MaxBatchTokens = parse.GetValue(maxBatchTokens),
                MaxModelLength = parse.GetValue(maxContext),
                KvCacheBlocks = parse.GetValue(kvBlocks),
                KvCacheMemoryFraction = parse.GetValue(kvFraction),
                BlockSize = parse.GetValue(blockSize),
                EnablePrefixCaching = parse.GetValue(prefixCaching),
                CudaGraphs = parse.GetValue(cudaGraphs),
            };
            var drain = parse.GetValue(drainTimeout);
            Experts.ExpertParallelSettings parallel;
            try
            {
                parallel = new Experts.ExpertParallelSettings
                {
                    Rank = parse.GetValue(rank),
                    WorldSize = parse.GetValue(worldSize),
                    Peers = Experts.ExpertParallelSettings.ParsePeers(parse.GetValue(peers)),
                    ExpertPort = parse.GetValue(expertPort),
                    Transport = Experts.ExpertParallelSettings.ParseTransport(parse.GetValue(expertTransport), parse.GetValue(device)!),
                    GroupToken = ReadGroupToken(parse.GetValue(groupTokenFile)),
                    RedundantExperts = parse.GetValue(redundantExperts),
                    RebalanceInterval = RebalanceSeconds(parse.GetValue(rebalanceInterval)),
                };
                parallel.Validate();
                var helperPresent = File.Exists(Path.Combine(AppContext.BaseDirectory, DeepSeek.Model.Native.NativeHelper.LibraryFileName));
                if (parallel.TransportProblem(parse.GetValue(device)!, helperPresent) is { } transportProblem) throw new ArgumentException(transportProblem);
                options.Validate();
                WeightQuantization.Parse(parse.GetValue(quantization)!).CheckDType(EngineService.ParseDType(parse.GetValue(dtype)!));
                if (!(drain >= 0)) throw new ArgumentException($"--drain-timeout must be 0 or more seconds, got {drain}.");
                if (!File.Exists(Path.Combine(directory, "config.json"))) throw new ArgumentException($"--model {directory} has no config.json; give a Hugging Face-layout model folder.");
            }
            catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"serve: {e.Message}");
                return 1;
            }
            var settings = new ServeSettings
            {
                Host = parse.GetValue(host)!,
                HttpPort = parse.GetValue(httpPort),
                GrpcPort = parse.GetValue(grpcPort),
                ApiKey = parse.GetValue(apiKey),
                ApiKeyFile = parse.GetValue(apiKeyFile),
                MaxRequestBytes = parse.GetValue(maxRequestBytes),
                Parallel = parallel,
                Engine = new EngineSettings(directory, parse.GetValue(dtype)!, options, TimeSpan.FromSeconds(drain)) { Quantization = parse.GetValue(quantization)! },
            };
            WebApplication app;
            try
            {
                app = RuntimeHost.Build(settings);
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException or IOException or UnauthorizedAccessException)
            {
                // A bad key file or listen address: say which, without a stack trace.
                Console.Error.WriteLine($"serve: {e.Message}");
                return 1;
            }
            // Read before running: the host disposes its services when it stops.
            var readiness = app.Services.GetRequiredService<Readiness>();
            await using (app)
                await app.RunAsync(cancellationToken);
            // A replica whose engine failed stopped itself (EngineService); its supervisor must see a failure.
            return readiness.State == ReadinessState.Failed ? 1 : 0;
        });
        return command;
    }

    /// <summary>The group token: the file's first line, else <c>DEEPSEEK_GROUP_TOKEN</c> itself (the operator mounts or injects its Secret).</summary>
    private static string? ReadGroupToken(string? file)
    {
        if (file is null) return Environment.GetEnvironmentVariable("DEEPSEEK_GROUP_TOKEN") is { Length: > 0 } token ? token.Trim() : null;
        if (!File.Exists(file)) throw new ArgumentException($"--group-token-file '{file}' does not exist.");
        var line = File.ReadLines(file).FirstOrDefault()?.Trim();
        return string.IsNullOrEmpty(line) ? throw new ArgumentException($"--group-token-file '{file}' is empty.") : line;
    }

    // The contract's name (design §2.5), not the one EnvironmentDefault would derive from the flag.

    private static TimeSpan RebalanceSeconds(double seconds) => seconds >= 0 && double.IsFinite(seconds)
        ? TimeSpan.FromSeconds(seconds)
        : throw new ArgumentException($"--rebalance-interval-seconds must be 0 (never) or more seconds, got {seconds}.");

    private static Option<int> IntOption(string name, int fallback, string description, int minimum = 1)
    {
        var option = new Option<int>(name)
        {
            Description = $"{description} Env: {EnvironmentDefault.VariableFor(name)}.",
            DefaultValueFactory = _ => EnvironmentDefault.Get(name, fallback),
        };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < minimum) result.AddError($"{name} must be at least {minimum}, not {result.GetValueOrDefault<int>()}.");
        });
        return option;
    }

    /// <summary>An integer with no default: absent unless the flag or its environment variable is given.</summary>
    private static Option<int?> OptionalIntOption(string name, string description) => new(name)
    {
        Description = $"{description} Env: {EnvironmentDefault.VariableFor(name)}.",
        DefaultValueFactory = _ => EnvironmentDefault.GetString(name) is null ? null : EnvironmentDefault.Get(name, 0),
    };

    private static Option<int> PortOption(string name, int fallback, string description)
    {
        var option = new Option<int>(name)
        {
            Description = $"{description} Env: {EnvironmentDefault.VariableFor(name)}.",
            DefaultValueFactory = _ => EnvironmentDefault.Get(name, fallback),
        };
        option.Validators.Add(result =>
        {
            var port = result.GetValueOrDefault<int>();
            if (port is < 0 or > 65535) result.AddError($"{name} must be between 0 and 65535, not {port}.");
        });
        return option;
    }
}
