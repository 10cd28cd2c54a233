using DeepSeek.Engine;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Structured;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Engine.Text;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Devices;
using DeepSeek.Model.Lora;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tokenization;
using DeepSeek.Runtime.Api;
using DeepSeek.Runtime.Serving;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// The engine over a checkpoint folder inside the web host, and the faces' <see cref="IInferenceBackend"/>
/// over it. Loading starts when the host starts (so <c>/health</c> answers during a long load) and
/// ends with a warm-up step. On shutdown it drains before the server stops listening, so requests
/// arriving meanwhile get 503 / UNAVAILABLE rather than a refused connection. If the engine stops
/// on its own (a fault it cannot continue after), the replica turns not-ready and the process exits
/// non-zero so that its supervisor restarts it.
/// </summary>
/// <remarks><paramref name="group"/> and <paramref name="transport"/>: the expert-parallel group this engine leads, if any; its pass shards the model before it is materialised.
/// <paramref name="adapters"/>: the LoRA adapters served beside the model (<see cref="OpenAdapters"/>), if any.</remarks>
public sealed partial class EngineService(ServeConfiguration configuration, ModelFolder folder, Readiness readiness, EngineMetrics metrics, IHostApplicationLifetime lifetime,
    ILogger<EngineService> logger, ILoggerFactory loggers, Experts.ExpertGroup? group = null, DeepSeek.Model.Parallelism.IExpertTransport? transport = null,
    LoraAdapterSet? adapters = null)
    : IInferenceBackend, IHostedLifecycleService, IAsyncDisposable
{
    private readonly TaskCompletionSource<InferenceEngine> _engine = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // The engine once its model is loaded, before the warm-up: a data-parallel rank answers its peers from then
    // on, since their warm-ups (and its own) exchange tokens with it.
    private readonly TaskCompletionSource<InferenceEngine> _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ModelDescription _model = Describe(configuration.Engine, folder) with { Adapters = adapters };
    private readonly Action<DeepSeekForCausalLM>? _modelPasses = group is not null && transport is not null ? model => group.Shard(model, transport) : null;
    // The engine's own lines (failed steps with their cause, its start) under its own category.
    private readonly ILogger _engineLogger = loggers.CreateLogger("DeepSeek.Engine");

    private static ModelDescription Describe(EngineOptions options, ModelFolder folder) => new()
    {
        ServedName = options.ServedModelName,
        Architecture = folder.Config.ModelType,
        VocabSize = folder.Config.VocabSize,
        // Until the engine has sized its KV pool, the context is the configured one; then the engine's.
        MaxContextLength = options.ContextTokens(folder.Config.MaxPositionEmbeddings),
        EmbeddingDimensions = folder.Config.HiddenSize,
        NumLayers = folder.Config.NumHiddenLayers,
        NumRoutedExperts = folder.Config.NRoutedExperts,
        ExpertsPerToken = folder.Config.NumExpertsPerTok,
        DType = folder.DType.ToString().ToLowerInvariant(),
        Device = options.Device,
        ParameterCount = CountParameters(folder.Directory, folder.Config),
        CreatedUnixSeconds = folder.Created.ToUnixTimeSeconds(),
        MaxTokenBytes = folder.Tokenizer?.MaxTokenBytes ?? 1,
        StructuredOutputs = folder.Tokenizer is { } tokenizer ? new StructuredOutputs(Vocabulary(tokenizer, folder.Config)) : null,
        MaxRunningRequests = options.MaxRunningRequests,
        MaxQueuedRequests = options.MaxQueuedRequests,
    };

    public ModelDescription Model => Volatile.Read(ref _model);

    /// <summary>
    /// Each id's bytes as the engine's decoder writes them, computed once per tokenizer, and the model's
    /// end-of-sequence id: what constrained decoding masks with. Tool-call markers that are added tokens
    /// stand for their text, so a forced call may use them as the model was trained to.
    /// </summary>
    public static TokenVocabulary Vocabulary(BpeTokenizer tokenizer, DeepSeekConfig config)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(config);
        var bytes = new byte[]?[tokenizer.Size];
        for (var id = 0; id < bytes.Length; id++) bytes[id] = tokenizer.BytesOf(id);
        foreach (var marker in ChatTemplate.ToolCallMarkers)
            if (tokenizer.AddedTokenId(marker) is { } id) bytes[id] = System.Text.Encoding.UTF8.GetBytes(marker);
        return new TokenVocabulary(bytes, config.EosTokenId is { } eos ? [eos] : []);
    }

    /// <summary>
    /// The LoRA adapters <c>serve</c> offers beside <paramref name="folder"/>'s model: those of
    /// <c>--lora-modules</c>, read and checked now; null when it serves none and cannot load any later.
    /// </summary>
    /// <exception cref="LoraAdapterException">An adapter folder cannot be served (the message says which and why).</exception>
    public static LoraAdapterSet? OpenAdapters(ServeConfiguration configuration, ModelFolder folder)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(folder);
        if (!configuration.ServesLora) return null;
        var set = new LoraAdapterSet(configuration.Engine.ServedModelName, LoraTargets.Of(folder.Config), configuration.Engine.MaxLoraRank, configuration.EnableLoraUpdates);
        foreach (var module in configuration.LoraModules) set.Load(module.Name, module.Directory);
        return set;
    }

    /// <summary>
    /// The engine over a checkpoint folder, as <c>serve</c> and <c>generate</c> start it: the model loads on
    /// the engine thread; text is decoded with the folder's tokenizer, special tokens skipped except the
    /// tool-call markers, which the chat face parses calls from.
    /// </summary>
    public static Task<InferenceEngine> StartEngineAsync(ModelFolder model, EngineOptions options, EngineMetrics metrics,
        Action<DeepSeekForCausalLM>? modelPasses = null, ILogger? engineLogger = null, LoraAdapterSet? adapters = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        void Log(string line)
        {
            if (engineLogger is not null) LogModelLoad(engineLogger, line);
        }
        return InferenceEngine.StartAsync(options,
            () => model.Load(TorchRuntime.Resolve(options.Device), modelPasses, Log),
            new DelegateTokenDecoder(ids => model.Tokenizer?.Decode(ids, skipSpecialTokens: true, ChatTemplate.ToolCallMarkers) ?? ""),
            metrics, logger: engineLogger, adapters: adapters);
    }

    /// <summary>
    /// The tokenizer may know fewer ids than the model embeds (checkpoints pad the table; the padding
    /// decodes to nothing) but ids the tokenizer can produce beyond the model's table would be refused.
    /// </summary>
    public static string DescribeVocabularyFit(int tokenizerSize, int modelVocabulary) => tokenizerSize.CompareTo(modelVocabulary) switch
    {
        0 => $"tokenizer and model vocabulary agree ({modelVocabulary} ids)",
        < 0 => $"tokenizer has {tokenizerSize} ids, the model's embedding {modelVocabulary}: ids {tokenizerSize}-{modelVocabulary - 1} are padding and decode to nothing",
        > 0 => $"tokenizer has {tokenizerSize} ids but the model embeds only {modelVocabulary}: text whose tokens fall at {modelVocabulary} or above is refused with 400",
    };

    /// <summary>Whether <paramref name="directory"/> is the tiny checkpoint copied into the build output (serve's default <c>--model</c>).</summary>
    public static bool IsEmbeddedDemoModel(string directory) => string.Equals(
        Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)),
        Path.TrimEndingDirectorySeparator(Path.GetFullPath(Cli.ModelOptions.EmbeddedModelDirectory)), StringComparison.Ordinal);

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (folder.Tokenizer is null)
        {
            LogNoTokenizer(logger, folder.Directory);
        }
        else
        {
            // Said at every start: a tokenizer from another checkpoint shows up here, not as garbled text.
            var fit = DescribeVocabularyFit(folder.Tokenizer.Size, folder.Config.VocabSize);
            // The embedded demo model is the tiny test checkpoint, whose byte-level tokenizer (260 ids) is larger than
            // its embedding (256) by design: that is no mistake of the user's, so it is said without a warning.
            if (folder.Tokenizer.Size > folder.Config.VocabSize && !IsEmbeddedDemoModel(folder.Directory)) LogVocabularyMismatch(logger, fit);
            else if (folder.Tokenizer.Size > folder.Config.VocabSize) LogDemoVocabulary(logger, fit);
            else LogVocabulary(logger, fit);
        }
        _ = Task.Run(LoadAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task LoadAsync()
    {
        try
        {
            var options = configuration.Engine;
            var engine = await StartEngineAsync(folder, options, metrics, _modelPasses, _engineLogger, Model.Adapters).ConfigureAwait(false);
            _loaded.TrySetResult(engine);
            await engine.WarmUpAsync().ConfigureAwait(false);
            if (logger.IsEnabled(LogLevel.Information))
            {
                var kvBytesPerToken = (long)(folder.Config.KvLoraRank + folder.Config.QkRopeHeadDim) * folder.Config.NumHiddenLayers * DTypeNames.Bytes(folder.DType);
                var kvTokens = (long)engine.NumKvBlocks * options.BlockSize;
                LogLoaded(logger, folder.Directory, engine.ModelLoadTime.TotalSeconds, options.Device, _model.DType,
                    engine.NumKvBlocks, options.BlockSize, kvTokens, kvTokens * kvBytesPerToken / (1024.0 * 1024.0), engine.MaxContextTokens);
            }
            Volatile.Write(ref _model, _model with { MaxContextLength = engine.MaxContextTokens });
            _engine.TrySetResult(engine);
            _ = WatchAsync(engine);
        }
        catch (Exception e)
        {
            if (ModelLoadFailure.IsUserError(e)) LogLoadRefused(logger, e.Message);
            else LogLoadFailed(logger, e);
            // Readiness turns Failed before the waiters wake: the warm-up, which awaits this task on
            // another thread, then knows the failure was said already and does not log it again with its trace.
            Fail();
            _engine.TrySetException(e);
            _loaded.TrySetException(e);
        }
    }

    /// <summary>An engine that stops while the host is not stopping has failed: say so and exit non-zero.</summary>
    private async Task WatchAsync(InferenceEngine engine)
    {
        try
        {
            await engine.Stopped.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            if (!lifetime.ApplicationStopping.IsCancellationRequested) LogEngineFailed(logger, e);
        }
        if (lifetime.ApplicationStopping.IsCancellationRequested) return;
        LogEngineStopped(logger);
        Fail();
    }

    /// <summary>Not-ready for good, then stop: <c>serve</c> exits with code 1 for a failed replica.</summary>
    private void Fail()
    {
        readiness.MarkFailed();
        // Once the host has started (at once if it has): a load that fails while Kestrel is still binding
        // (LibTorch already loaded, a folder without weights) would otherwise cancel the bind, and the host's
        // start would end in an unhandled TaskCanceledException (exit 134) instead of exit 1.
        lifetime.ApplicationStarted.Register(lifetime.StopApplication);
    }

    /// <summary>Runs before any hosted service stops, Kestrel included: the server still answers while in-flight requests finish.</summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        readiness.MarkDraining();
        if (!_engine.Task.IsCompletedSuccessfully) return;
        LogDraining(logger, configuration.DrainTimeout.TotalSeconds);
        await _engine.Task.Result.DrainAsync(configuration.DrainTimeout).ConfigureAwait(false);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_engine.Task.IsCompletedSuccessfully) await _engine.Task.Result.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The engine once loaded and warmed up (faults if loading failed).</summary>
    public Task<InferenceEngine> Engine => _engine.Task;

    /// <summary>The engine with its model loaded, before its warm-up (<see cref="Engine"/> completes after it).</summary>
    public Task<InferenceEngine> Loaded => _loaded.Task;

    /// <summary>Completes when the engine is loaded and has run its warm-up step.</summary>
    public async Task WarmUpAsync(CancellationToken cancellationToken) => await _engine.Task.WaitAsync(cancellationToken).ConfigureAwait(false);

    private BpeTokenizer Tokenizer => folder.Tokenizer
        ?? throw new InvalidRequestException("prompt", $"The model {configuration.Engine.ServedModelName} has no tokenizer.json; send token ids instead of text.", "no_tokenizer");

    public int[] Encode(string text, bool addSpecialTokens)
    {
        var ids = Tokenizer.Encode(text);
        return addSpecialTokens && folder.Config.BosTokenId is { } bos && (ids.Count == 0 || ids[0] != bos) ? [bos, .. ids] : [.. ids];
    }

    public string Decode(IReadOnlyList<int> tokenIds, bool skipSpecialTokens) => folder.Tokenizer?.Decode(tokenIds, skipSpecialTokens) ?? "";

    public int[] ApplyChatTemplate(IReadOnlyList<ChatMessage> messages, IReadOnlyList<ChatTool> tools) => ChatTemplate.Encode(Tokenizer, messages, tools: tools);

    public GenerationHandle Submit(ValidatedRequest request, CancellationToken cancellationToken) =>
        RunningEngine().Submit(request, cancellationToken);

    public EngineLoad GetLoad() => _engine.Task.IsCompletedSuccessfully ? _engine.Task.Result.GetLoad() : new EngineLoad(0, 0, 0, 0, Draining: false);

    public Task<float[][]> EmbedAsync(IReadOnlyList<IReadOnlyList<int>> inputs, CancellationToken cancellationToken) =>
        RunningEngine().EmbedAsync(inputs, cancellationToken);

    /// <summary>The faces check readiness first; this guards the moment between the check and the load finishing.</summary>
    private InferenceEngine RunningEngine() => _engine.Task.IsCompletedSuccessfully
        ? _engine.Task.Result
        : throw new Api.ApiFailure(new Api.ApiError(Api.ApiErrorKind.Unavailable, "The model is still loading; retry when GET /ready answers 200.", Code: "loading"));

    private static long CountParameters(string directory, DeepSeekConfig config)
    {
        try
        {
            using var checkpoint = SafetensorsCheckpoint.Open(directory);
            return ModelInventory.From(config, checkpoint.TensorNames.Select(checkpoint.Info)).Parameters;
        }
        catch (Exception e) when (e is IOException or CheckpointFormatException)
        {
            // The load reports a broken checkpoint with its cause; the count is only informative.
            return 0;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Vocabulary: {Fit}")]
    private static partial void LogVocabulary(ILogger logger, string fit);

    [LoggerMessage(Level = LogLevel.Information, Message = "Vocabulary: {Fit}. Expected of the embedded demo model: a tiny random-weight test checkpoint whose embedding is smaller than its tokenizer; give --model for a real checkpoint")]
    private static partial void LogDemoVocabulary(ILogger logger, string fit);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Vocabulary: {Fit}")]
    private static partial void LogVocabularyMismatch(ILogger logger, string fit);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Directory} has no tokenizer.json: text prompts are refused, token ids only, generated text is empty")]
    private static partial void LogNoTokenizer(ILogger logger, string directory);

    /// <summary>The model load's own lines: its progress and what quantisation did.</summary>
    [LoggerMessage(Level = LogLevel.Information, Message = "{Line}")]
    private static partial void LogModelLoad(ILogger logger, string line);

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {Model} loaded in {Seconds:0.0} s and warmed up on device {Device}, dtype {DType}; KV cache {Blocks} blocks of {BlockSize} tokens ({Tokens} tokens, {KvMiB:0.0} MiB); context {Context} tokens")]
    private static partial void LogLoaded(ILogger logger, string model, double seconds, string device, string dtype, int blocks, int blockSize, long tokens, double kvMiB, int context);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Loading the model failed; the process stops")]
    private static partial void LogLoadFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Loading the model failed; the process stops: {Reason}")]
    private static partial void LogLoadRefused(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The engine failed")]
    private static partial void LogEngineFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The engine stopped while serving; the replica turns not-ready and serve exits with code 1")]
    private static partial void LogEngineStopped(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Draining: finishing in-flight requests for up to {Seconds} s")]
    private static partial void LogDraining(ILogger logger, double seconds);
}
