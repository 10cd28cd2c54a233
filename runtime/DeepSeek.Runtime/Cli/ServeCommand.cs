using System.CommandLine;
using DeepSeek.Engine;
using DeepSeek.Engine.Execution;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Lora;
using DeepSeek.Model.Native;
using DeepSeek.Model.Quantization;
using DeepSeek.Runtime.Experts;
using DeepSeek.Runtime.Hosting;
using DeepSeek.Runtime.Serving;
using static DeepSeek.Contract.RuntimeContract;

namespace DeepSeek.Runtime.Cli;

/// <summary><c>serve</c>, the server a pod runs: its flags become one <see cref="ServeConfiguration"/>, checked once, and the model folder is opened once before the host starts.</summary>
public static class ServeCommand
{
    private static ServeConfiguration Defaults => ServeConfiguration.Defaults;

    private static EngineOptions EngineDefaults => EngineOptions.Defaults;

    public static Command Build()
    {
        var command = new Command(ServeVerb, "Serve the model over HTTP (OpenAI-compatible) and gRPC.")
        {
            Text(Flags.Host, "Address to bind (IP address or localhost)."),
            Value(Flags.HttpPort, Defaults.HttpPort, "HTTP port: OpenAI API, /health, /ready, /metrics."),
            Value(Flags.GrpcPort, Defaults.GrpcPort, "gRPC port: inference, health, reflection."),
            Text(Flags.ApiKey, "Require 'Authorization: Bearer <key>' on /v1/* and gRPC Inference; visible in ps, prefer --api-key-file."),
            Text(Flags.ApiKeyFile, "File whose first line is the API key (a mounted Secret)."),
            Value(Flags.MaxRequestBytes, Defaults.MaxRequestBytes, "Largest HTTP request body; larger ones get 413."),
            ModelOptions.Model(),
            Text(Flags.ServedName, "Model name clients use and the metrics' model label. Default: the model folder's name."),
            ModelOptions.Device(), ModelOptions.DType(), ModelOptions.Quantization(), ModelOptions.CudaGraphs(), ModelOptions.Threads(),
            Value(Flags.MaxRunningRequests, EngineDefaults.MaxRunningRequests, "Requests decoded together at most (the batch)."),
            Value(Flags.MaxQueuedRequests, EngineDefaults.MaxQueuedRequests, "Requests waiting at most; more are refused with 429 / RESOURCE_EXHAUSTED."),
            Value(Flags.MaxBatchTokens, EngineDefaults.MaxBatchTokens, "Tokens (prefill chunks and decodes) in one forward pass."),
            OptionalInt(Flags.MaxContextLength, "Longest prompt plus completion in tokens; default and upper bound: the model's max_position_embeddings."),
            OptionalInt(Flags.KvCacheBlocks, "KV-cache blocks; wins over --kv-cache-memory-fraction."),
            Value(Flags.KvCacheMemoryFraction, EngineDefaults.KvCacheMemoryFraction,
                "Share of the device memory free after loading the weights that the KV cache takes (CPU: of the memory available to the process)."),
            Value(Flags.BlockSize, EngineDefaults.BlockSize, "Tokens per KV-cache block."),
            Value(Flags.PrefixCaching, EngineDefaults.EnablePrefixCaching, "Reuse the KV cache of shared prompt prefixes (true or false)."),
            LoraModules(),
            Value(Flags.MaxLoras, EngineDefaults.MaxLoras, "Distinct LoRA adapters one step may mix (each holds a device slot); more adapters wait in host memory."),
            Value(Flags.MaxLoraRank, EngineDefaults.MaxLoraRank, "The largest LoRA rank served; adapters of a higher rank are refused."),
            Value(Flags.EnableLoraUpdates, Defaults.EnableLoraUpdates, "Enable POST /v1/load_lora_adapter and /v1/unload_lora_adapter (true or false)."),
            Value(Flags.DrainTimeout, Defaults.DrainTimeout.TotalSeconds, "Seconds in-flight requests may take to finish after SIGTERM before they are cancelled."),
            // The expert-parallel group (one replica over several processes); world size 1 is no group.
            Value(Flags.Rank, Defaults.Parallel.Rank, "This process's rank in its expert-parallel group; 0 is the leader that serves the APIs."),
            Value(Flags.WorldSize, Defaults.Parallel.WorldSize, "Ranks in the expert-parallel group (1: no expert parallelism)."),
            Text(Flags.Peers, "Every rank's expert address host:port, comma-separated in rank order."),
            Value(Flags.ExpertPort, Defaults.Parallel.ExpertPort, "Where a rank listens for its leader (deepseek.runtime.v1.Experts)."),
            Text(Flags.ExpertTransport, "How ranks exchange routed tokens: grpc or nccl (default: nccl on CUDA, grpc on CPU; nccl needs CUDA and the native helper)."),
            Text(Flags.GroupTokenFile, $"File whose first line is the group's shared secret; ranks refuse Experts calls without it ({GroupTokenVariable} holds the token itself)."),
            Value(Flags.RedundantExperts, Defaults.Parallel.RedundantExperts, "Extra copies of the hottest experts per MoE layer, spread over the ranks."),
            Value(Flags.DataParallelAttention, Defaults.Parallel.DataParallelAttention,
                "Every rank serves the APIs with its own scheduler and KV cache and sends its own tokens to the experts' holders (gRPC transport); false: rank 0 runs every request."),
            Value(Flags.LocalRanks, Defaults.LocalRanks,
                "Ranks this pod runs, one serve process per GPU, started and supervised here (exits when one dies). With L > 1: --world-size counts all ranks, "
                + "--rank is the pod's index (its ranks are rank·L … rank·L+L−1), --peers lists one address per pod, and local rank i gets cuda:i and every base port + 10·i."),
            Value(Flags.RebalanceIntervalSeconds, Defaults.Parallel.RebalanceInterval.TotalSeconds,
                "The leader recomputes the expert placement from the observed load every this many seconds and moves experts between steps (0: never)."),
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            ServeConfiguration configuration;
            WebApplication? app = null;
            try
            {
                configuration = Read(parse);
                if (configuration.LocalRanks <= 1)
                {
                    configuration.Validate(nativeHelperPresent: File.Exists(Path.Combine(AppContext.BaseDirectory, NativeHelper.LibraryFileName)));
                    if (ListenPorts.FirstInUse(RuntimeHost.ResolveListenAddress(configuration.Host), Ports(configuration)) is { } inUse) throw new ArgumentException(inUse);
                    var folder = ModelFolder.Open(configuration.ModelDirectory, configuration.DType, configuration.Quantization);
                    // Before the load: a model its device cannot hold is refused with the plan. With --kv-cache-blocks the
                    // cache size is the user's, and the device is not asked (the runner does not ask it either).
                    if (configuration.Engine.KvCacheBlocks is null
                        && DeviceFit.Problem(folder, configuration, DeviceMemory.FreeBytes(configuration.Engine.Device)) is { } tooLarge)
                        throw new ArgumentException(tooLarge);
                    // Before the engine (or a rank's tensor) thread runs its first parallel region, which fixes that thread's count.
                    var threads = CpuThreads.ForThisProcess(configuration.Threads);
                    threads.Apply();
                    // Before the load too: an adapter folder that cannot be served is said in one line, in seconds.
                    var adapters = EngineService.OpenAdapters(configuration, folder);
                    app = RuntimeHost.Build(configuration, folder, adapters: adapters);
                    app.LogCpuThreads(threads);
                }
            }
            catch (Exception e) when (e is ArgumentException or ConfigException or InvalidOperationException or IOException or UnauthorizedAccessException or LoraAdapterException)
            {
                // A value out of range, a model folder that is not one, a bad key file or listen address: say which, without a stack trace.
                Console.Error.WriteLine($"serve: {e.Message}");
                TerminationMessage.Write($"serve: {e.Message}");
                return 1;
            }
            if (app is null) return await RunLocalRanksAsync(configuration);
            // Read before running: the host disposes its services when it stops.
            var readiness = app.Services.GetRequiredService<Readiness>();
            await using (app)
            {
                try
                {
                    await app.RunAsync(cancellationToken);
                }
                catch (OperationCanceledException) when (readiness.State == ReadinessState.Failed && !cancellationToken.IsCancellationRequested)
                {
                    // A member stopped the host while it was still starting (a failed load has said why): exit 1, not an unhandled exception.
                    return 1;
                }
                catch (IOException e) when (e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
                {
                    // Taken between the check above and Kestrel's bind.
                    Console.Error.WriteLine($"serve: {e.Message} Choose another port.");
                    return 1;
                }
            }
            // A replica whose engine failed stopped itself (EngineService); its supervisor must see a failure.
            return readiness.State == ReadinessState.Failed ? 1 : 0;
        });
        return command;
    }

    /// <summary>The one configuration from the parsed flags; malformed values (a peer list, a token file) throw here, everything else is <see cref="ServeConfiguration.Validate"/>'s.</summary>
    private static ServeConfiguration Read(ParseResult parse)
    {
        var directory = parse.GetValue<string>(Flags.Model)!;
        var device = parse.GetValue<string>(Flags.Device)!;
        return new ServeConfiguration
        {
            Host = parse.GetValue<string?>(Flags.Host) ?? Defaults.Host,
            HttpPort = parse.GetValue<int>(Flags.HttpPort),
            GrpcPort = parse.GetValue<int>(Flags.GrpcPort),
            ApiKey = parse.GetValue<string?>(Flags.ApiKey),
            ApiKeyFile = parse.GetValue<string?>(Flags.ApiKeyFile),
            MaxRequestBytes = parse.GetValue<long>(Flags.MaxRequestBytes),
            ModelDirectory = directory,
            DType = DTypeNames.Parse(parse.GetValue<string>(Flags.Dtype)!),
            Quantization = WeightQuantization.Parse(parse.GetValue<string>(Flags.Quantization)!),
            Engine = new EngineOptions
            {
                ServedModelName = parse.GetValue<string?>(Flags.ServedName) ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(directory)),
                Device = device,
                MaxRunningRequests = parse.GetValue<int>(Flags.MaxRunningRequests),
                MaxQueuedRequests = parse.GetValue<int>(Flags.MaxQueuedRequests),
                MaxBatchTokens = parse.GetValue<int>(Flags.MaxBatchTokens),
                MaxModelLength = parse.GetValue<int?>(Flags.MaxContextLength),
                KvCacheBlocks = parse.GetValue<int?>(Flags.KvCacheBlocks),
                KvCacheMemoryFraction = parse.GetValue<double>(Flags.KvCacheMemoryFraction),
                BlockSize = parse.GetValue<int>(Flags.BlockSize),
                EnablePrefixCaching = parse.GetValue<bool>(Flags.PrefixCaching),
                CudaGraphs = parse.GetValue<bool>(Flags.CudaGraphs),
                MaxLoras = parse.GetValue<int>(Flags.MaxLoras),
                MaxLoraRank = parse.GetValue<int>(Flags.MaxLoraRank),
            },
            LoraModules = LoraModule.ParseAll(parse.GetValue<string[]>(Flags.LoraModules) ?? []),
            EnableLoraUpdates = parse.GetValue<bool>(Flags.EnableLoraUpdates),
            DrainTimeout = Seconds(Flags.DrainTimeout, parse.GetValue<double>(Flags.DrainTimeout)),
            Parallel = new ExpertParallelSettings
            {
                Rank = parse.GetValue<int>(Flags.Rank),
                WorldSize = parse.GetValue<int>(Flags.WorldSize),
                Peers = ExpertParallelSettings.ParsePeers(parse.GetValue<string?>(Flags.Peers)),
                ExpertPort = parse.GetValue<int>(Flags.ExpertPort),
                Transport = ExpertParallelSettings.ParseTransport(parse.GetValue<string?>(Flags.ExpertTransport), device),
                GroupToken = ReadGroupToken(parse.GetValue<string?>(Flags.GroupTokenFile)),
                RedundantExperts = parse.GetValue<int>(Flags.RedundantExperts),
                RebalanceInterval = Seconds(Flags.RebalanceIntervalSeconds, parse.GetValue<double>(Flags.RebalanceIntervalSeconds)),
                DataParallelAttention = parse.GetValue<bool>(Flags.DataParallelAttention),
            },
            LocalRanks = parse.GetValue<int>(Flags.LocalRanks),
            Threads = parse.GetValue<int?>(Flags.Threads),
        };
    }

    /// <summary>With <c>--local-ranks</c> above 1 this process only starts and supervises one <c>serve</c> per local rank.</summary>
    private static async Task<int> RunLocalRanksAsync(ServeConfiguration configuration)
    {
        IReadOnlyList<LocalRank> plan;
        string rankPeers;
        var parallel = configuration.Parallel;
        try
        {
            plan = LocalRankPlan.For(configuration.LocalRanks, parallel.Rank, parallel.WorldSize, configuration.Engine.Device,
                configuration.HttpPort, configuration.GrpcPort, parallel.ExpertPort);
            rankPeers = LocalRankPlan.RankPeers(parallel.Peers, configuration.LocalRanks, parallel.WorldSize);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"serve: {e.Message}");
            return 1;
        }
        var arguments = Environment.GetCommandLineArgs().SkipWhile(a => a != ServeVerb).Skip(1).ToList();
        return await LocalRankSupervisor.RunAsync(plan, parallel.WorldSize, rankPeers, arguments,
            configuration.DrainTimeout > TimeSpan.Zero ? configuration.DrainTimeout : TimeSpan.Zero);
    }

    /// <summary>What this process listens on: the two API ports, and a rank other than the leader its expert port.</summary>
    private static IEnumerable<(string Flag, int Port)> Ports(ServeConfiguration configuration) =>
        configuration.Parallel is { IsGroup: true, IsLeader: false } parallel
            ? [(Flags.HttpPort, configuration.HttpPort), (Flags.GrpcPort, configuration.GrpcPort), (Flags.ExpertPort, parallel.ExpertPort)]
            : [(Flags.HttpPort, configuration.HttpPort), (Flags.GrpcPort, configuration.GrpcPort)];

    /// <summary>The group token: the file's first line, else the contract's variable itself (the operator mounts or injects its Secret).</summary>
    private static string? ReadGroupToken(string? file)
    {
        if (file is null) return Environment.GetEnvironmentVariable(GroupTokenVariable) is { Length: > 0 } token ? token.Trim() : null;
        if (!File.Exists(file)) throw new ArgumentException($"{Flags.GroupTokenFile} '{file}' does not exist.");
        var line = File.ReadLines(file).FirstOrDefault()?.Trim();
        return string.IsNullOrEmpty(line) ? throw new ArgumentException($"{Flags.GroupTokenFile} '{file}' is empty.") : line;
    }

    /// <summary>Negative spans pass to <see cref="ServeConfiguration.Validate"/>, which names them; NaN or infinity is no span at all.</summary>
    private static TimeSpan Seconds(string flag, double seconds) => double.IsFinite(seconds)
        ? TimeSpan.FromSeconds(seconds)
        : throw new ArgumentException($"{flag} must be a number of seconds, not {seconds}.");

    /// <summary>A flag whose environment variable sets its default, falling back to <paramref name="fallback"/>.</summary>
    private static Option<T> Value<T>(string name, T fallback, string description) where T : IParsable<T> => new(name)
    {
        Description = $"{description} Env: {EnvironmentDefault.VariableFor(name)}.",
        DefaultValueFactory = _ => EnvironmentDefault.Get(name, fallback),
    };

    /// <summary><c>--lora-modules NAME=DIR [NAME=DIR …]</c>; its variable holds the entries separated by spaces or commas.</summary>
    private static Option<string[]> LoraModules() => new(Flags.LoraModules)
    {
        Description = $"LoRA adapters served beside the model: NAME=DIR entries, each a PEFT folder (adapter_config.json, adapter_model.safetensors); requests pick one by its name as their model. Env: {EnvironmentDefault.VariableFor(Flags.LoraModules)}.",
        AllowMultipleArgumentsPerToken = true,
        DefaultValueFactory = _ => EnvironmentDefault.GetString(Flags.LoraModules) is { } entries ? [entries] : [],
    };

    /// <summary>A text flag, absent unless the flag or its environment variable is given.</summary>
    private static Option<string?> Text(string name, string description) => new(name)
    {
        Description = $"{description} Env: {EnvironmentDefault.VariableFor(name)}.",
        DefaultValueFactory = _ => EnvironmentDefault.GetString(name),
    };

    /// <summary>An integer with no default: absent unless the flag or its environment variable is given.</summary>
    private static Option<int?> OptionalInt(string name, string description) => new(name)
    {
        Description = $"{description} Env: {EnvironmentDefault.VariableFor(name)}.",
        DefaultValueFactory = _ => EnvironmentDefault.GetString(name) is null ? null : EnvironmentDefault.Get(name, 0),
    };
}
