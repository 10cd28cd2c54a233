namespace DeepSeek.Contract;

/// <summary>
/// The names the operator and the runtime share, compiled into both (linked, not referenced, so each
/// keeps its own copy of one source): the <c>serve</c> verb's flags and the environment variables that
/// default them, the ports and their names, the probe paths, where the model is mounted and whom the
/// container runs as. The operator starts runtime pods with exactly these; the runtime's <c>serve</c>
/// must accept every flag in <see cref="FlagsSetByOperator"/> (as an option, and through
/// <see cref="VariableFor"/> as an environment variable).
/// </summary>
internal static class RuntimeContract
{
    /// <summary>The verb the runtime container runs.</summary>
    public const string ServeVerb = "serve";

    /// <summary>Every <c>serve</c> flag <c>--some-flag</c> also reads its default from <c>DEEPSEEK_SOME_FLAG</c>.</summary>
    public const string EnvironmentPrefix = "DEEPSEEK_";

    public const int Http = 8000;
    public const int Grpc = 50051;
    public const string HttpName = "http";
    public const string GrpcName = "grpc";
    public const string ReadyPath = "/ready";
    public const string HealthPath = "/health";
    public const string ModelMountPath = "/models";
    /// <summary>Where the operator mounts each LoRA adapter folder, as <c>/adapters/NAME</c>.</summary>
    public const string AdapterMountPath = "/adapters";
    /// <summary>The images' non-root user (scripts/build-images.sh and runtime/Dockerfile create it).</summary>
    public const int RunAsUser = 65532;

    /// <summary>Where a rank listens for its leader's Experts calls.</summary>
    public const int ExpertPort = 50052;
    public const string ExpertPortName = "experts";

    /// <summary>The group's shared secret itself (serve's <c>--group-token-file</c> names a file instead); the operator injects it from a Secret.</summary>
    public const string GroupTokenVariable = "DEEPSEEK_GROUP_TOKEN";

    /// <summary>Seconds between rebalancing passes (<c>--rebalance-interval-seconds</c>); the contract names it without the unit.</summary>
    public const string RebalanceIntervalVariable = "DEEPSEEK_REBALANCE_INTERVAL";

    /// <summary>The verb that fetches a checkpoint from a Hugging Face-compatible hub into a folder.</summary>
    public const string DownloadVerb = "download";

    /// <summary>Flags of <c>download REPOSITORY</c> the operator sets on its init container.</summary>
    public static class DownloadFlags
    {
        public const string Revision = "--revision";
        public const string Endpoint = "--endpoint";
        public const string Output = "--output";
        /// <summary>Exit at once, without the hub, when the folder holds a completed download of the same repository and revision.</summary>
        public const string SkipIfComplete = "--skip-if-complete";
    }

    /// <summary>Where <c>download</c> reads the hub's access token.</summary>
    public const string HubTokenVariable = "HF_TOKEN";

    /// <summary>The environment variable that sets <paramref name="flag"/>'s default: <c>--max-batch-tokens</c> is <c>DEEPSEEK_MAX_BATCH_TOKENS</c>.</summary>
    public static string VariableFor(string flag) => flag == Flags.RebalanceIntervalSeconds
        ? RebalanceIntervalVariable
        : EnvironmentPrefix + flag.TrimStart('-').Replace('-', '_').ToUpperInvariant();

    /// <summary>Flags of <c>serve</c>; <see cref="FlagsSetByOperator"/> lists those the operator sets (arguments or environment variables).</summary>
    public static class Flags
    {
        public const string Model = "--model";
        public const string ServedName = "--served-name";
        public const string Host = "--host";
        public const string HttpPort = "--http-port";
        public const string GrpcPort = "--grpc-port";
        public const string Dtype = "--dtype";
        public const string Quantization = "--quantization";
        public const string Device = "--device";
        public const string MaxRunningRequests = "--max-running-requests";
        public const string MaxQueuedRequests = "--max-queued-requests";
        public const string MaxBatchTokens = "--max-batch-tokens";
        public const string KvCacheMemoryFraction = "--kv-cache-memory-fraction";
        public const string MaxContextLength = "--max-context-length";
        public const string PrefixCaching = "--prefix-caching";
        public const string DrainTimeout = "--drain-timeout";
        public const string ApiKey = "--api-key";
        public const string RedundantExperts = "--redundant-experts";
        public const string WorldSize = "--world-size";
        public const string Rank = "--rank";
        public const string Peers = "--peers";
        public const string LocalRanks = "--local-ranks";
        public const string RebalanceIntervalSeconds = "--rebalance-interval-seconds";
        public const string ApiKeyFile = "--api-key-file";
        public const string MaxRequestBytes = "--max-request-bytes";
        public const string CudaGraphs = "--cuda-graphs";
        public const string KvCacheBlocks = "--kv-cache-blocks";
        public const string BlockSize = "--block-size";
        public const string ExpertPort = "--expert-port";
        public const string ExpertTransport = "--expert-transport";
        public const string GroupTokenFile = "--group-token-file";
        /// <summary>Every rank runs attention for its own requests (design §2.5.1); without it rank 0 runs all of them.</summary>
        public const string DataParallelAttention = "--data-parallel-attention";
        /// <summary>LibTorch's intra-op threads; default from the CPUs the process may use (its cgroup quota and affinity).</summary>
        public const string Threads = "--threads";
        /// <summary>LoRA adapters served beside the model, <c>NAME=DIR</c> each (PEFT folders); vLLM's names (design §2.7).</summary>
        public const string LoraModules = "--lora-modules";
        /// <summary>Distinct LoRA adapters one step may mix (device slots).</summary>
        public const string MaxLoras = "--max-loras";
        /// <summary>The largest LoRA rank served.</summary>
        public const string MaxLoraRank = "--max-lora-rank";
        /// <summary>Enables <c>POST /v1/load_lora_adapter</c> and <c>/v1/unload_lora_adapter</c>.</summary>
        public const string EnableLoraUpdates = "--enable-lora-updates";
    }

    /// <summary>Every flag the operator sets on a runtime pod, as an argument or through its environment variable.</summary>
    public static IReadOnlyList<string> FlagsSetByOperator { get; } =
    [
        Flags.Model, Flags.ServedName, Flags.Host, Flags.HttpPort, Flags.GrpcPort, Flags.Dtype, Flags.Quantization, Flags.Device,
        Flags.MaxRunningRequests, Flags.MaxQueuedRequests, Flags.MaxBatchTokens, Flags.KvCacheMemoryFraction,
        Flags.MaxContextLength, Flags.PrefixCaching, Flags.DrainTimeout, Flags.ApiKey,
        Flags.RedundantExperts, Flags.WorldSize, Flags.Rank, Flags.Peers, Flags.LocalRanks, Flags.RebalanceIntervalSeconds,
        Flags.DataParallelAttention, Flags.ExpertTransport, Flags.LoraModules, Flags.MaxLoras,
    ];
}
