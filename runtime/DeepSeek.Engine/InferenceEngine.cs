using System.Threading.Channels;
using DeepSeek.Engine.Admission;
using DeepSeek.Engine.Core;
using DeepSeek.Engine.Execution;
using DeepSeek.Engine.Output;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Engine.Text;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Lora;
using DeepSeek.Model.Modeling;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace DeepSeek.Engine;

/// <summary>
/// The engine's client, safe from any thread (vLLM v1's engine client): admission, submission and
/// handles, embeddings, warm-up, load, drain and stop. Request handlers validate with <see cref="Validator"/>,
/// then call <see cref="Submit(ValidatedRequest, CancellationToken)"/> (admission errors are thrown there, synchronously) and read plain <see cref="TokenEvent"/>s from
/// the returned handle; nothing they touch is a tensor. The work runs in the engine core
/// (<c>Core/EngineCore</c>) on its own thread; this class only posts to it and reads its snapshots.
/// </summary>
public sealed partial class InferenceEngine : IDisposable, IAsyncDisposable
{
    private static readonly TimeSpan StopWait = TimeSpan.FromSeconds(60);

    private readonly EngineOptions _options;
    private readonly EngineMetrics _metrics;
    private readonly ITokenDecoder _decoder;
    private readonly TimeProvider _time;
    private readonly TokenRateWindow _rate;
    private readonly EngineCore _core;
    private long _nextRequestId;
    private RequestValidator? _validator;

    private InferenceEngine(EngineOptions options, Func<IModelRunner> createRunner, ITokenDecoder decoder, EngineMetrics metrics,
        TimeProvider time, ILogger logger, Action<StepTiming>? onStep)
    {
        _options = options;
        _metrics = metrics;
        _decoder = decoder;
        _time = time;
        _rate = new TokenRateWindow(time, options.ThroughputWindow);
        _core = new EngineCore(options, createRunner, metrics, _rate, logger, onStep);
    }

    /// <summary>
    /// Starts the engine thread, which runs <paramref name="loadModel"/> (so the model's tensors belong
    /// to it), sizes the KV pool and then serves. Completes when the engine accepts requests. With
    /// <paramref name="adapters"/> the model gets <see cref="EngineOptions.MaxLoras"/> adapter slots and
    /// requests may name any adapter of the set (<see cref="ValidatedRequest.WithAdapter"/>).
    /// </summary>
    public static Task<InferenceEngine> StartAsync(EngineOptions options, Func<DeepSeekForCausalLM> loadModel,
        ITokenDecoder decoder, EngineMetrics metrics, TimeProvider? time = null, Action<StepTiming>? onStep = null, ILogger? logger = null,
        LoraAdapterSet? adapters = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loadModel);
        var log = logger ?? NullLogger.Instance;
        return StartAsync(options, () => ModelRunner.Load(options, loadModel, line => LogRunner(log, line), adapters), decoder, metrics, time, onStep, logger);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Line}")]
    private static partial void LogRunner(ILogger logger, string line);

    /// <summary>The same over any runner: how tests put a runner whose steps fail under the real core.</summary>
    internal static async Task<InferenceEngine> StartAsync(EngineOptions options, Func<IModelRunner> createRunner,
        ITokenDecoder decoder, EngineMetrics metrics, TimeProvider? time, Action<StepTiming>? onStep, ILogger? logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(createRunner);
        ArgumentNullException.ThrowIfNull(decoder);
        ArgumentNullException.ThrowIfNull(metrics);
        options.Validate();
        var engine = new InferenceEngine(options, createRunner, decoder, metrics, time ?? TimeProvider.System, logger ?? NullLogger.Instance, onStep);
        engine._core.Start();
        await engine._core.Started.ConfigureAwait(false);
        // The context is known once the KV pool is sized; text never reaches the engine, so no byte bound.
        engine._validator = new RequestValidator(engine.Config.VocabSize, engine.MaxContextTokens, maxQueuedRequests: options.MaxQueuedRequests);
        return engine;
    }

    public DeepSeekConfig Config => _core.Config;

    /// <summary>Blocks of the KV pool, each <see cref="EngineOptions.BlockSize"/> tokens.</summary>
    public int NumKvBlocks => _core.NumKvBlocks;

    /// <summary>Prompt plus output never exceed this: the model's context or the pool, whichever is smaller.</summary>
    public int MaxContextTokens => _core.MaxContextTokens;

    public TimeSpan ModelLoadTime => _core.ModelLoadTime;

    public IReadOnlyList<int> EosTokenIds => _core.EosTokenIds;

    public bool IsDraining => _core.Admission?.IsDraining ?? false;

    /// <summary>Serving, draining, stopped, or failed: what a host's readiness follows.</summary>
    public EngineState State => _core.State == EngineState.Serving && IsDraining ? EngineState.Draining : _core.State;

    /// <summary>
    /// The fault that stopped the engine when <see cref="State"/> is <see cref="EngineState.Failed"/>
    /// (then <see cref="Stopped"/> completes and every request has ended with an error); null otherwise.
    /// </summary>
    public Exception? Failure => _core.State == EngineState.Failed ? _core.Failure : null;

    /// <summary>Completes when the engine thread has stopped and freed its tensors, after a stop or a failure.</summary>
    public Task Stopped => _core.Stopped;

    /// <summary>The rules a request passes before <see cref="Submit(ValidatedRequest, CancellationToken)"/>, over this engine's vocabulary, context and queue bound.</summary>
    public RequestValidator Validator => _validator ?? throw new InvalidOperationException("The engine has not started.");

    /// <summary>Validates (naming fields as <c>/v1/completions</c> does), admits and queues a request; its events arrive on the handle. Throws <see cref="InvalidRequestException"/>, <see cref="EngineOverloadedException"/> or <see cref="EngineDrainingException"/>.</summary>
    public GenerationHandle Submit(IReadOnlyList<int> promptTokenIds, SamplingParameters sampling, CancellationToken cancellationToken = default)
    {
        ThrowIfStopped();
        return Submit(Validate(promptTokenIds, sampling), cancellationToken);
    }

    /// <summary>Admits and queues a request the validator accepted; throws <see cref="EngineOverloadedException"/> or <see cref="EngineDrainingException"/>.</summary>
    public GenerationHandle Submit(ValidatedRequest request, CancellationToken cancellationToken = default) => SubmitAll([request], cancellationToken)[0];

    /// <summary>Validates and admits several prompts at once (all or none) as one item, so they share their first step: a benchmark's batch.</summary>
    public IReadOnlyList<GenerationHandle> SubmitBatch(IReadOnlyList<IReadOnlyList<int>> prompts, SamplingParameters sampling, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ThrowIfStopped();
        return SubmitAll([.. prompts.Select(prompt => Validate(prompt, sampling))], cancellationToken);
    }

    /// <summary>Admits several validated requests at once (all or none) as one item, so they share their first step: a benchmark's batch on LoRA adapters.</summary>
    public IReadOnlyList<GenerationHandle> SubmitBatch(IReadOnlyList<ValidatedRequest> requests, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        ThrowIfStopped();
        return SubmitAll(requests, cancellationToken);
    }

    private List<GenerationHandle> SubmitAll(IReadOnlyList<ValidatedRequest> validated, CancellationToken cancellationToken)
    {
        var requests = new List<ActiveRequest>(validated.Count);
        try
        {
            foreach (var request in validated) requests.Add(Admit(request, cancellationToken));
            Enqueue(new EngineWork.Submit([.. requests]));
        }
        catch
        {
            foreach (var request in requests) request.Ticket.Dispose();
            throw;
        }
        return requests.Select(Register).ToList();
    }

    private ValidatedRequest Validate(IReadOnlyList<int> promptTokenIds, SamplingParameters sampling)
    {
        try
        {
            return Validator.Validate(promptTokenIds, sampling, RequestFields.Completions);
        }
        catch (InvalidRequestException)
        {
            _metrics.RecordFailure(FailureReasons.Invalid);
            throw;
        }
    }

    private ActiveRequest Admit(ValidatedRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var admission = _core.Admission ?? throw new InvalidOperationException("The engine has not started.");
        ThrowIfStopped();
        AdmissionTicket ticket;
        try
        {
            ticket = admission.Admit();
        }
        catch (Exception e) when (e is EngineOverloadedException or EngineDrainingException)
        {
            _metrics.RecordFailure(e is EngineOverloadedException ? FailureReasons.Overloaded : FailureReasons.Draining);
            throw;
        }
        var id = "req-" + Interlocked.Increment(ref _nextRequestId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var output = Channel.CreateUnbounded<TokenEvent>(new UnboundedChannelOptions { SingleWriter = true });
        return new ActiveRequest(
            new EngineRequest(id, request.PromptTokenIds, request.Sampling, request.Adapter),
            new OutputTextAssembler(_decoder, request.Sampling, request.PromptTokenIds),
            output,
            ticket,
            new RequestTimings(_time),
            cancellationToken);
    }

    /// <summary>A failed or stopped engine refuses like a draining one (503: retry on another replica), saying why.</summary>
    private void ThrowIfStopped()
    {
        if (Failure is { } failure)
        {
            _metrics.RecordFailure(FailureReasons.Draining);
            throw new EngineDrainingException($"The engine failed and serves no more requests ({failure.Message}); retry on another replica.");
        }
    }

    private void Enqueue(EngineWork.Submit work)
    {
        if (_core.StopRequested || !_core.Input.Writer.TryWrite(work))
            throw _core.StopRequested || IsDraining ? new EngineDrainingException() : new EngineOverloadedException(_options.MaxQueuedRequests);
    }

    private GenerationHandle Register(ActiveRequest active)
    {
        var id = active.Request.Id;
        if (active.Cancellation.CanBeCanceled)
            active.Registration = active.Cancellation.Register(() => _core.Cancel(id));
        return new GenerationHandle(id, active.Events);
    }

    /// <summary>Waiting, running, KV usage and recent tokens/s; cheap and safe from any thread.</summary>
    public EngineLoad GetLoad() => _core.Load with { TokensPerSecond = _rate.TokensPerSecond(), Draining = IsDraining };

    /// <summary>
    /// One L2-normalised embedding per input: the mean of the model's final hidden states (after the
    /// final norm) over the input's tokens. Runs on the engine thread between steps, in a temporary
    /// cache, so it neither takes KV blocks nor touches the prefix cache. Throws
    /// <see cref="InvalidRequestException"/> for empty, too long or out-of-vocabulary inputs.
    /// </summary>
    public Task<float[][]> EmbedAsync(IReadOnlyList<IReadOnlyList<int>> inputs, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (_core.Admission is null) throw new InvalidOperationException("The engine has not started.");
        ThrowIfStopped();
        Validator.CheckEmbeddingInputs(inputs);
        if (_core.StopRequested || IsDraining) throw new EngineDrainingException();
        var work = new EngineWork.Embed(inputs, cancellationToken);
        if (!_core.Input.Writer.TryWrite(work)) throw _core.StopRequested ? new EngineDrainingException() : new EngineOverloadedException(_options.MaxQueuedRequests);
        return work.Done.Task;
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the engine thread, which owns the model's tensors, between two
    /// steps: no forward runs meanwhile, and the next step sees whatever it changed. For work on the
    /// model itself (an expert-parallel leader staging and switching placements); it delays the next
    /// step by its duration, so keep each piece short. Its exception is the task's, never the engine's.
    /// </summary>
    public Task<T> RunBetweenStepsAsync<T>(Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (Failure is not null || _core.StopRequested) throw new InvalidOperationException("The engine has stopped.");
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var item = new EngineWork.BetweenSteps(() =>
        {
            try
            {
                done.TrySetResult(work());
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        });
        if (!_core.Input.Writer.TryWrite(item)) throw new InvalidOperationException("The engine is stopping or its input is full.");
        return done.Task;
    }

    /// <summary>Runs one real step through the model (and frees it), so the first request does not pay for lazy initialisation.</summary>
    public Task WarmUpAsync()
    {
        var work = new EngineWork.WarmUp();
        if (!_core.Input.Writer.TryWrite(work)) throw new InvalidOperationException("The engine is stopping or its input is full; warm up before serving.");
        return work.Done.Task;
    }

    /// <summary>
    /// Stops admission, lets in-flight requests finish for up to <paramref name="timeout"/>, then
    /// cancels what is left (finish reason cancelled) and stops the engine thread.
    /// </summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        var admission = _core.Admission ?? throw new InvalidOperationException("The engine has not started.");
        admission.BeginDrain();
        _core.Wake();
        var drained = Task.WhenAny(admission.WhenDrained, _core.Stopped);
        var finished = await Task.WhenAny(drained, Task.Delay(timeout, _time)).ConfigureAwait(false) == drained;
        if (!finished)
        {
            _core.CancelAll();
            // Cancellation lands at the next step boundary; the step under way finishes first.
            await Task.WhenAny(drained, Task.Delay(StopWait, _time)).ConfigureAwait(false);
        }
        await StopAsync().ConfigureAwait(false);
    }

    /// <summary>Stops the engine thread now; requests still in flight end with finish reason cancelled.</summary>
    public async Task StopAsync()
    {
        _core.RequestStop();
        if (!_core.IsAlive && !_core.Stopped.IsCompleted) return;
        await _core.Stopped.WaitAsync(StopWait).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _core.RequestStop();
        _core.Join(StopWait);
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);
}
