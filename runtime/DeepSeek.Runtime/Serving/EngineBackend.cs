using System.Threading.Channels;
using DeepSeek.Engine;
using DeepSeek.Engine.Admission;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Tokenization;
using DeepSeek.Runtime.Hosting;
using EngineRequests = DeepSeek.Engine.Requests;

namespace DeepSeek.Runtime.Serving;

/// <summary>
/// The API faces' <see cref="IInferenceBackend"/> over the real <see cref="InferenceEngine"/> that
/// <see cref="EngineHost"/> loads: passes the validated parameters on, maps engine admission errors to the API's
/// rejections, and token events out. Holds no tensors; the engine thread does all model work.
/// </summary>
public sealed class EngineBackend : IInferenceBackend
{
    /// <summary>What a refused client is told to wait: a few decode steps free queue slots.</summary>
    public static readonly TimeSpan OverloadRetryAfter = TimeSpan.FromSeconds(2);

    private readonly EngineHost _host;
    private readonly EngineSettings _settings;
    private readonly DeepSeekConfig _config;
    private readonly BpeTokenizer? _tokenizer;
    private readonly ModelDescription _configured;
    private ModelDescription? _loaded;

    public EngineBackend(EngineHost host, EngineSettings settings)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(settings);
        _host = host;
        _settings = settings;
        _config = DeepSeekConfig.Load(settings.ModelDirectory);
        _tokenizer = host.Tokenizer;
        var context = Math.Min(settings.Options.MaxModelLength ?? _config.MaxPositionEmbeddings, _config.MaxPositionEmbeddings);
        _configured = Describe(context);
    }

    /// <summary>Until the engine has sized its KV pool, the context is the configured one; then the engine's.</summary>
    public ModelDescription Model => _loaded ?? (_host.Engine.IsCompletedSuccessfully ? _loaded = Describe(_host.Engine.Result.MaxContextTokens) : _configured);

    private ModelDescription Describe(int context) => new()
    {
        ServedName = _settings.Options.ServedModelName,
        Architecture = _config.ModelType,
        VocabSize = _config.VocabSize,
        MaxContextLength = context,
        EmbeddingDimensions = _config.HiddenSize,
        NumLayers = _config.NumHiddenLayers,
        NumRoutedExperts = _config.NRoutedExperts,
        ExpertsPerToken = _config.NumExpertsPerTok,
        DType = _settings.DType,
        Device = _settings.Options.Device,
        CreatedUnixSeconds = new DateTimeOffset(File.GetLastWriteTimeUtc(Path.Combine(_settings.ModelDirectory, "config.json"))).ToUnixTimeSeconds(),
    };

    /// <summary>Completes when the engine is loaded and has run its warm-up step (EngineHost does both).</summary>
    public async Task WarmUpAsync(CancellationToken cancellationToken) =>
        await _host.Engine.WaitAsync(cancellationToken).ConfigureAwait(false);

    private BpeTokenizer Tokenizer => _tokenizer
        ?? throw new InvalidRequestException("prompt", $"The model {_settings.Options.ServedModelName} has no tokenizer.json; send token ids instead of text.");

    public int[] Encode(string text, bool addSpecialTokens)
    {
        var ids = Tokenizer.Encode(text);
        return addSpecialTokens && _config.BosTokenId is { } bos && (ids.Count == 0 || ids[0] != bos) ? [bos, .. ids] : [.. ids];
    }

    public string Decode(IReadOnlyList<int> tokenIds, bool skipSpecialTokens) =>
        _tokenizer?.Decode(tokenIds, skipSpecialTokens) ?? "";

    public int[] ApplyChatTemplate(IReadOnlyList<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var rendered = ChatTemplate.Render(messages.Select(m => new Model.Tokenization.ChatMessage(RoleName(m.Role), m.Content)).ToList());
        return [.. Tokenizer.Encode(rendered)];
    }

    private static string RoleName(ChatRole role) => role switch
    {
        ChatRole.System => "system",
        ChatRole.User => "user",
        ChatRole.Assistant => "assistant",
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, null),
    };

    public GenerationHandle Submit(GenerationRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var engine = RunningEngine();
        Engine.GenerationHandle handle;
        try
        {
            handle = engine.Submit(request.PromptTokenIds, request.Sampling, cancellationToken);
        }
        catch (Exception e) when (Rejection(e) is { } rejected)
        {
            throw rejected;
        }
        var events = Channel.CreateUnbounded<GenerationEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        _ = PumpAsync(handle.Events, events.Writer);
        return new GenerationHandle(request.RequestId, events.Reader);
    }

    /// <summary>Engine events to API events: a token event may also finish; the stream ends with exactly one <see cref="GenerationFinished"/>.</summary>
    private static async Task PumpAsync(ChannelReader<EngineRequests.TokenEvent> source, ChannelWriter<GenerationEvent> target)
    {
        var finished = false;
        try
        {
            await foreach (var item in source.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                if (finished) continue;
                var pendingText = item.TextDelta;
                if (item.TokenId is { } token)
                {
                    var logprobs = item.Logprobs;
                    target.TryWrite(new TokenGenerated(token, item.TextDelta, logprobs?.Chosen.Logprob ?? 0f,
                        logprobs?.Top.Select(t => new TokenLogprob(t.TokenId, t.Logprob)).ToArray() ?? []));
                    pendingText = "";
                }
                if (item.FinishReason is { } reason)
                {
                    var usage = item.Usage ?? new EngineRequests.UsageInfo(0, 0, 0);
                    target.TryWrite(new GenerationFinished(ToApi(reason), new GenerationUsage(usage.PromptTokens, usage.CompletionTokens, usage.CachedPromptTokens), pendingText));
                    finished = true;
                }
            }
        }
        finally
        {
            if (!finished) target.TryWrite(new GenerationFinished(FinishReason.Cancelled, new GenerationUsage(0, 0)));
            target.TryComplete();
        }
    }

    private static FinishReason ToApi(EngineRequests.FinishReason reason) => reason switch
    {
        EngineRequests.FinishReason.Stop => FinishReason.Stop,
        EngineRequests.FinishReason.Length => FinishReason.Length,
        EngineRequests.FinishReason.Cancelled => FinishReason.Cancelled,
        _ => FinishReason.Error,
    };

    public LoadSnapshot GetLoad()
    {
        var options = _settings.Options;
        var engine = _host.Engine.IsCompletedSuccessfully ? _host.Engine.Result : null;
        var load = engine?.GetLoad();
        return new LoadSnapshot
        {
            Waiting = load?.Waiting ?? 0,
            Running = load?.Running ?? 0,
            KvCacheUsage = load?.KvCacheUsage ?? 0,
            RecentTokensPerSecond = load?.TokensPerSecond ?? 0,
            Ready = load is { Draining: false },
            MaxRunningRequests = options.MaxRunningRequests,
            MaxQueuedRequests = options.MaxQueuedRequests,
        };
    }

    public async Task<float[][]> EmbedAsync(IReadOnlyList<int[]> inputs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var engine = RunningEngine();
        Task<float[][]> pending;
        try
        {
            pending = engine.EmbedAsync(inputs, cancellationToken);
        }
        catch (Exception e) when (Rejection(e) is { } rejected)
        {
            throw rejected;
        }
        try
        {
            return await pending.ConfigureAwait(false);
        }
        catch (EngineDrainingException e)
        {
            throw new UnavailableException(e.Message);
        }
    }

    private InferenceEngine RunningEngine() => _host.Engine.IsCompletedSuccessfully
        ? _host.Engine.Result
        : throw new UnavailableException("The model is still loading; retry when GET /ready answers 200.");

    private static InferenceRejectedException? Rejection(Exception e) => e switch
    {
        EngineRequests.InvalidRequestException invalid => new InvalidRequestException(string.IsNullOrEmpty(invalid.Param) ? "prompt" : invalid.Param, invalid.Message),
        EngineOverloadedException overloaded => new OverloadedException(overloaded.Message, OverloadRetryAfter),
        EngineDrainingException draining => new UnavailableException(draining.Message),
        _ => null,
    };
}
