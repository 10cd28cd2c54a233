using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using DeepSeek.Engine.Admission;
using DeepSeek.Engine.Execution;
using DeepSeek.Engine.KvCache;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Sampling;
using DeepSeek.Engine.Scheduling;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Engine.Text;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;

namespace DeepSeek.Engine;

/// <summary>
/// The serving engine: continuous batching of many requests through one model on one dedicated
/// thread, which creates the model and KV cache and does every tensor operation. Request handlers on
/// any thread call <see cref="Submit"/> (admission errors are thrown there, synchronously) and read
/// plain <see cref="TokenEvent"/>s from the returned handle; nothing they touch is a tensor.
/// </summary>
public sealed class InferenceEngine : IDisposable, IAsyncDisposable
{
    private static readonly TimeSpan StopWait = TimeSpan.FromSeconds(60);

    private readonly EngineOptions _options;
    private readonly EngineMetrics _metrics;
    private readonly ITokenDecoder _decoder;
    private readonly TimeProvider _time;
    private readonly Channel<EngineWork> _input;
    private readonly ConcurrentQueue<string> _cancellations = new();
    private readonly Dictionary<string, ActiveRequest> _active = []; // engine thread only
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TokenRateWindow _rate;
    private readonly Thread _thread;
    private AdmissionControl? _admission;
    private Scheduler? _scheduler;
    private ModelRunner? _runner;
    private int[] _eosTokenIds = [];
    private volatile EngineLoad _load = new(0, 0, 0, 0, false);
    private volatile bool _cancelAll;
    private volatile bool _stopRequested;
    private long _nextRequestId;
    private long _preemptions;
    private Action<StepTiming>? _onStep;
    private long _reportedQueries;
    private long _reportedHits;

    private InferenceEngine(EngineOptions options, Func<DeepSeekForCausalLM> loadModel, ITokenDecoder decoder, EngineMetrics metrics, TimeProvider time)
    {
        _options = options;
        _metrics = metrics;
        _decoder = decoder;
        _time = time;
        _rate = new TokenRateWindow(time, options.ThroughputWindow);
        // Admission bounds the requests in flight to the engine; the headroom is for warm-ups and wake-ups.
        _input = Channel.CreateBounded<EngineWork>(new BoundedChannelOptions(options.MaxQueuedRequests + 16)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _thread = new Thread(() => Run(loadModel)) { IsBackground = true, Name = "deepseek-engine" };
    }

    /// <summary>
    /// Starts the engine thread, which runs <paramref name="loadModel"/> (so the model's tensors belong
    /// to it), sizes the KV pool and then serves. Completes when the engine accepts requests.
    /// </summary>
    public static async Task<InferenceEngine> StartAsync(EngineOptions options, Func<DeepSeekForCausalLM> loadModel,
        ITokenDecoder decoder, EngineMetrics metrics, TimeProvider? time = null, Action<StepTiming>? onStep = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loadModel);
        ArgumentNullException.ThrowIfNull(decoder);
        ArgumentNullException.ThrowIfNull(metrics);
        options.Validate();
        var engine = new InferenceEngine(options, loadModel, decoder, metrics, time ?? TimeProvider.System) { _onStep = onStep };
        engine._thread.Start();
        await engine._started.Task.ConfigureAwait(false);
        return engine;
    }

    public DeepSeekConfig Config { get; private set; } = null!;

    /// <summary>Blocks of the KV pool, each <see cref="EngineOptions.BlockSize"/> tokens.</summary>
    public int NumKvBlocks { get; private set; }

    /// <summary>Prompt plus output never exceed this: the model's context or the pool, whichever is smaller.</summary>
    public int MaxContextTokens { get; private set; }

    public TimeSpan ModelLoadTime { get; private set; }

    public IReadOnlyList<int> EosTokenIds => _eosTokenIds;

    public bool IsDraining => _admission?.IsDraining ?? false;

    /// <summary>Completes when the engine thread has stopped and freed its tensors.</summary>
    public Task Stopped => _stopped.Task;

    /// <summary>Admits a request and queues it; its events arrive on the handle. Throws <see cref="InvalidRequestException"/>, <see cref="EngineOverloadedException"/> or <see cref="EngineDrainingException"/>.</summary>
    public GenerationHandle Submit(IReadOnlyList<int> promptTokenIds, SamplingParameters sampling, CancellationToken cancellationToken = default)
    {
        var active = Admit(promptTokenIds, sampling, cancellationToken, out _);
        try
        {
            Enqueue(new EngineWork.Submit([active]));
        }
        catch
        {
            active.Ticket.Dispose();
            throw;
        }
        return Register(active);
    }

    private ActiveRequest Admit(IReadOnlyList<int> promptTokenIds, SamplingParameters sampling, CancellationToken cancellationToken, out AdmissionTicket ticket)
    {
        ArgumentNullException.ThrowIfNull(promptTokenIds);
        ArgumentNullException.ThrowIfNull(sampling);
        var admission = _admission ?? throw new InvalidOperationException("The engine has not started.");
        for (var i = 0; i < promptTokenIds.Count; i++)
            if (promptTokenIds[i] < 0 || promptTokenIds[i] >= Config.VocabSize)
            {
                _metrics.RecordFailure("invalid");
                throw new InvalidRequestException("prompt", $"Token id {promptTokenIds[i]} at prompt index {i} is outside the model's vocabulary of {Config.VocabSize} tokens.");
            }
        try
        {
            ticket = admission.Admit(promptTokenIds.Count, sampling);
        }
        catch (Exception e) when (e is InvalidRequestException or EngineOverloadedException or EngineDrainingException)
        {
            _metrics.RecordFailure(e switch { EngineOverloadedException => "overloaded", EngineDrainingException => "draining", _ => "invalid" });
            throw;
        }
        var id = "req-" + Interlocked.Increment(ref _nextRequestId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var output = Channel.CreateUnbounded<TokenEvent>(new UnboundedChannelOptions { SingleWriter = true });
        return new ActiveRequest(
            new EngineRequest(id, promptTokenIds, sampling),
            new RequestSampler(sampling, promptTokenIds, _eosTokenIds),
            new OutputTextAssembler(_decoder, sampling, promptTokenIds),
            output,
            ticket,
            new RequestTimings(_time),
            cancellationToken);
    }

    private void Enqueue(EngineWork.Submit work)
    {
        if (_stopRequested || !_input.Writer.TryWrite(work))
            throw _stopRequested || IsDraining ? new EngineDrainingException() : new EngineOverloadedException(_options.MaxQueuedRequests);
    }

    private GenerationHandle Register(ActiveRequest active)
    {
        var id = active.Request.Id;
        if (active.Cancellation.CanBeCanceled)
            active.Registration = active.Cancellation.Register(() => _cancellations.Enqueue(id));
        return new GenerationHandle(id, active.Events);
    }

    /// <summary>
    /// Admits several prompts at once (all or none) and hands them to the engine as one item, so they
    /// can share their first step: a list of prompts in one API call, or a benchmark's batch.
    /// </summary>
    public IReadOnlyList<GenerationHandle> SubmitBatch(IReadOnlyList<IReadOnlyList<int>> prompts, SamplingParameters sampling, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        var requests = new List<ActiveRequest>(prompts.Count);
        try
        {
            foreach (var prompt in prompts) requests.Add(Admit(prompt, sampling, cancellationToken, out _));
            Enqueue(new EngineWork.Submit([.. requests]));
        }
        catch
        {
            foreach (var request in requests) request.Ticket.Dispose();
            throw;
        }
        return requests.Select(Register).ToList();
    }

    /// <summary>Waiting, running, KV usage and recent tokens/s; cheap and safe from any thread.</summary>
    public EngineLoad GetLoad() => _load with { TokensPerSecond = _rate.TokensPerSecond(), Draining = IsDraining };

    /// <summary>
    /// One L2-normalised embedding per input: the mean of the model's final hidden states (after the
    /// final norm) over the input's tokens. Runs on the engine thread between steps, in a temporary
    /// cache, so it neither takes KV blocks nor touches the prefix cache. Throws
    /// <see cref="InvalidRequestException"/> for empty, too long or out-of-vocabulary inputs.
    /// </summary>
    public Task<float[][]> EmbedAsync(IReadOnlyList<IReadOnlyList<int>> inputs, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (_admission is null) throw new InvalidOperationException("The engine has not started.");
        for (var n = 0; n < inputs.Count; n++)
        {
            var input = inputs[n];
            if (input.Count == 0) throw new InvalidRequestException("input", $"Input {n} is empty; give at least one token.");
            if (input.Count > MaxContextTokens)
                throw new InvalidRequestException("input", $"Input {n} is {input.Count} tokens; the model's context is {MaxContextTokens}. Shorten it.");
            for (var i = 0; i < input.Count; i++)
                if (input[i] < 0 || input[i] >= Config.VocabSize)
                    throw new InvalidRequestException("input", $"Token id {input[i]} at index {i} of input {n} is outside the model's vocabulary of {Config.VocabSize} tokens.");
        }
        if (_stopRequested || IsDraining) throw new EngineDrainingException();
        var work = new EngineWork.Embed(inputs, cancellationToken);
        if (!_input.Writer.TryWrite(work)) throw _stopRequested ? new EngineDrainingException() : new EngineOverloadedException(_options.MaxQueuedRequests);
        return work.Done.Task;
    }

    /// <summary>Runs one real step through the model (and frees it), so the first request does not pay for lazy initialisation.</summary>
    public Task WarmUpAsync()
    {
        var work = new EngineWork.WarmUp();
        if (!_input.Writer.TryWrite(work)) throw new InvalidOperationException("The engine is stopping or its input is full; warm up before serving.");
        return work.Done.Task;
    }

    /// <summary>
    /// Stops admission, lets in-flight requests finish for up to <paramref name="timeout"/>, then
    /// cancels what is left (finish reason cancelled) and stops the engine thread.
    /// </summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        var admission = _admission ?? throw new InvalidOperationException("The engine has not started.");
        admission.BeginDrain();
        Wake();
        var drained = admission.WhenDrained;
        var finished = await Task.WhenAny(drained, Task.Delay(timeout, _time)).ConfigureAwait(false) == drained;
        if (!finished)
        {
            _cancelAll = true;
            Wake();
            // Cancellation lands at the next step boundary; the step under way finishes first.
            await Task.WhenAny(drained, Task.Delay(StopWait, _time)).ConfigureAwait(false);
        }
        await StopAsync().ConfigureAwait(false);
    }

    /// <summary>Stops the engine thread now; requests still in flight end with finish reason cancelled.</summary>
    public async Task StopAsync()
    {
        _stopRequested = true;
        _input.Writer.TryComplete();
        if (!_thread.IsAlive && !_stopped.Task.IsCompleted) return;
        await _stopped.Task.WaitAsync(StopWait).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _stopRequested = true;
        _input.Writer.TryComplete();
        if (_thread.IsAlive) _thread.Join(StopWait);
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    private void Wake() => _input.Writer.TryWrite(EngineWork.Wake.Instance);

    // ───────────────────────────── engine thread ─────────────────────────────

    private void Run(Func<DeepSeekForCausalLM> loadModel)
    {
        try
        {
            Initialise(loadModel);
        }
        catch (Exception e)
        {
            _stopped.TrySetResult();
            _started.TrySetException(e);
            return;
        }
        try
        {
            Loop();
        }
        finally
        {
            CancelEverything();
            _runner?.Dispose();
            _runner = null;
            _stopped.TrySetResult();
        }
    }

    private void Initialise(Func<DeepSeekForCausalLM> loadModel)
    {
        var clock = Stopwatch.StartNew();
        var model = loadModel();
        try
        {
            ModelLoadTime = clock.Elapsed;
            var config = model.Config;
            var context = Math.Min(_options.MaxModelLength ?? config.MaxPositionEmbeddings, config.MaxPositionEmbeddings);
            var bytesPerBlock = ModelRunner.BytesPerBlock(config, model.DType, _options.BlockSize);
            var free = _options.KvCacheBlocks is null ? DeviceMemory.FreeBytes(_options.Device) : 0;
            var blocks = KvCacheSizing.NumBlocks(_options.KvCacheBlocks, _options.KvCacheMemoryFraction, free, bytesPerBlock,
                _options.BlockSize, context, _options.MaxRunningRequests);
            _runner = new ModelRunner(model, blocks, _options.BlockSize);
        }
        catch
        {
            model.Dispose();
            throw;
        }

        Config = _runner.Model.Config;
        NumKvBlocks = _runner.NumBlocks;
        var pool = new KvBlockPool(_runner.NumBlocks, _options.BlockSize);
        MaxContextTokens = (int)Math.Min(Math.Min(_options.MaxModelLength ?? Config.MaxPositionEmbeddings, Config.MaxPositionEmbeddings), pool.CapacityTokens);
        _eosTokenIds = Config.EosTokenId is { } eos ? [eos] : [];
        _scheduler = new Scheduler(new SchedulerOptions
        {
            MaxBatchTokens = _options.MaxBatchTokens,
            MaxRunningRequests = _options.MaxRunningRequests,
            MaxModelLength = MaxContextTokens,
            EnablePrefixCaching = _options.EnablePrefixCaching,
            EosTokenIds = _eosTokenIds,
        }, pool);
        _admission = new AdmissionControl(new AdmissionLimits(_options.MaxQueuedRequests, MaxContextTokens));
        _metrics.SetModelLoadTime(ModelLoadTime);
        PublishLoad();
        _started.TrySetResult();
    }

    private void Loop()
    {
        var scheduler = _scheduler!;
        while (true)
        {
            ReadInput();
            while (_cancellations.TryDequeue(out var id)) scheduler.Cancel(id);
            if (_cancelAll)
                foreach (var id in _active.Keys) scheduler.Cancel(id);
            if (_stopRequested) return;
            if (!scheduler.HasUnfinishedRequests)
            {
                PublishLoad();
                // Idle: block on the input channel until work, a wake-up or completion (stop) arrives.
                if (!_input.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult()) return;
                continue;
            }
            Step(scheduler);
        }
    }

    private void ReadInput()
    {
        while (_input.Reader.TryRead(out var work))
        {
            switch (work)
            {
                case EngineWork.Submit submit:
                    foreach (var active in submit.Requests) Accept(active);
                    break;
                case EngineWork.Embed embed:
                    RunEmbed(embed);
                    break;
                case EngineWork.WarmUp warmUp:
                    try
                    {
                        RunWarmUp();
                        warmUp.Done.TrySetResult();
                    }
                    catch (Exception e)
                    {
                        warmUp.Done.TrySetException(e);
                    }
                    break;
            }
        }
    }

    private void Accept(ActiveRequest active)
    {
        if (active.Cancellation.IsCancellationRequested)
        {
            End(active, FinishReason.Cancelled, null);
            return;
        }
        try
        {
            _scheduler!.Add(active.Request);
            _active[active.Request.Id] = active;
        }
        catch (InvalidRequestException e)
        {
            End(active, FinishReason.Error, e.Message);
        }
    }

    private void Step(Scheduler scheduler)
    {
        var started = Stopwatch.GetTimestamp();
        var step = scheduler.Schedule();
        _preemptions += step.Preempted.Count;
        var cache = scheduler.PrefixCache;
        if (cache.QueriedTokens != _reportedQueries)
        {
            _metrics.AddPrefixCacheLookup(cache.QueriedTokens - _reportedQueries, cache.HitTokens - _reportedHits);
            (_reportedQueries, _reportedHits) = (cache.QueriedTokens, cache.HitTokens);
        }
        foreach (var cancelled in step.Cancelled)
            if (_active.TryGetValue(cancelled.Id, out var active)) End(active, FinishReason.Cancelled, null);
        if (step.IsEmpty)
        {
            PublishLoad();
            // Nothing fits this step (only cancellations happened): look again after a short pause, not in a hot loop.
            if (scheduler.HasUnfinishedRequests) Thread.Sleep(1);
            return;
        }

        foreach (var sequence in step.Sequences)
        {
            var active = _active[sequence.Request.Id];
            if (active.Scheduled) continue;
            active.Scheduled = true;
            active.Ticket.MarkRunning();
            if (active.Timings.MarkScheduled() is { } queued) _metrics.RecordQueueTime(queued);
        }

        StepLogits logits;
        try
        {
            logits = _runner!.Run(ForwardBatchLayout.Build(step, _options.BlockSize));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            foreach (var sequence in step.Sequences) Fail(scheduler, sequence.Request.Id, $"The model step failed: {e.Message}");
            PublishLoad();
            return;
        }

        var sampled = new int[step.Sequences.Count];
        var logprobs = new SampledLogprobs?[step.Sequences.Count];
        var indexOf = new Dictionary<EngineRequest, int>(step.Sequences.Count);
        for (var i = 0; i < step.Sequences.Count; i++)
        {
            var sequence = step.Sequences[i];
            indexOf[sequence.Request] = i;
            if (!sequence.SamplesToken || sequence.Request.CancelRequested) continue;
            try
            {
                var token = _active[sequence.Request.Id].Sampler.Sample(logits.Row(i));
                sampled[i] = token.TokenId;
                logprobs[i] = token.Logprobs;
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IndexOutOfRangeException)
            {
                Fail(scheduler, sequence.Request.Id, $"Sampling failed: {e.Message}");
            }
        }

        var generated = 0;
        foreach (var progress in scheduler.Update(step, sampled))
        {
            var active = _active[progress.Request.Id];
            if (progress.NewTokenId is not { } token)
            {
                if (progress.FinishReason is { } reason) End(active, reason, null);
                continue;
            }
            generated++;
            var (firstToken, interToken) = active.Timings.MarkToken();
            if (firstToken is { } ttft) _metrics.RecordTimeToFirstToken(ttft);
            if (interToken is { } itl) _metrics.RecordInterTokenLatency(itl);
            var tokenEvent = active.Assembler.OnToken(token, logprobs[indexOf[progress.Request]], progress.FinishReason, progress.Request.Usage);
            if (active.Assembler.StopStringHit && progress.FinishReason is null) scheduler.Finish(progress.Request.Id, FinishReason.Stop);
            active.Output.TryWrite(tokenEvent);
            if (tokenEvent.FinishReason is { } finish) Complete(active, finish);
        }

        if (_onStep is { } onStep)
        {
            var decodes = step.Sequences.Count(q => q.IsDecode);
            onStep(new StepTiming(step.TotalTokens - decodes, decodes, generated, Stopwatch.GetElapsedTime(started)));
        }
        _metrics.AddGenerationTokens(generated);
        _rate.Add(generated);
        foreach (var load in logits.ExpertLoads)
        {
            _metrics.RecordExpertTokens(load.LayerIndex, load.TokensPerExpert);
            _metrics.SetExpertLoadImbalance(load.LayerIndex, Telemetry.ExpertLoad.ImbalanceRatio(load.TokensPerExpert));
        }
        PublishLoad();
    }

    private void RunEmbed(EngineWork.Embed embed)
    {
        if (embed.Cancellation.IsCancellationRequested)
        {
            embed.Done.TrySetCanceled(embed.Cancellation);
            return;
        }
        try
        {
            embed.Done.TrySetResult(embed.Inputs.Select(_runner!.Embed).ToArray());
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            embed.Done.TrySetException(e);
        }
    }

    /// <summary>One short prompt through the model on a borrowed block, which goes straight back to the pool.</summary>
    private void RunWarmUp()
    {
        var pool = _scheduler!.Pool;
        var blocks = new List<int>(1);
        if (!pool.TryAllocate(1, blocks)) return; // serving already: the engine is warm
        try
        {
            var count = Math.Min(_options.BlockSize, 4);
            var slots = Enumerable.Range(0, count).Select(p => (long)blocks[0] * _options.BlockSize + p).ToArray();
            var arrays = new ForwardBatchArrays(
                Enumerable.Range(0, count).Select(t => (long)(t % Config.VocabSize)).ToArray(),
                Enumerable.Range(0, count).Select(p => (long)p).ToArray(),
                slots,
                [new SequenceSlice("warm-up", 0, count, slots, true)]);
            _ = _runner!.Run(arrays);
        }
        finally
        {
            pool.Release(blocks[0]);
        }
    }

    private void Fail(Scheduler scheduler, string requestId, string message)
    {
        scheduler.Finish(requestId, FinishReason.Error);
        if (_active.TryGetValue(requestId, out var active)) End(active, FinishReason.Error, message);
    }

    /// <summary>Closes a request's stream with an event that carries no token (cancelled, failed).</summary>
    private void End(ActiveRequest active, FinishReason reason, string? message)
    {
        active.Output.TryWrite(OutputTextAssembler.OnEnd(reason, active.Request.Usage, message));
        Complete(active, reason);
    }

    private void Complete(ActiveRequest active, FinishReason reason)
    {
        active.Output.TryComplete();
        active.Registration.Dispose();
        _active.Remove(active.Request.Id);
        _metrics.AddPromptTokens(active.Request.NumPromptTokens);
        _metrics.RecordEndToEndLatency(active.Timings.MarkFinished());
        if (reason is FinishReason.Stop or FinishReason.Length) _metrics.RecordSuccess(reason);
        else _metrics.RecordFailure(reason == FinishReason.Cancelled ? "cancelled" : "error");
        active.Ticket.Dispose();
    }

    /// <summary>On stop: every request still known ends as cancelled, the queued ones included.</summary>
    private void CancelEverything()
    {
        while (_input.Reader.TryRead(out var work))
        {
            if (work is EngineWork.Submit submit)
                foreach (var queued in submit.Requests) End(queued, FinishReason.Cancelled, null);
            else if (work is EngineWork.WarmUp warmUp) warmUp.Done.TrySetCanceled();
            else if (work is EngineWork.Embed embed) embed.Done.TrySetException(new EngineDrainingException());
        }
        foreach (var active in _active.Values.ToList())
        {
            _scheduler?.Finish(active.Request.Id, FinishReason.Cancelled);
            End(active, FinishReason.Cancelled, null);
        }
        PublishLoad();
    }

    private void PublishLoad()
    {
        if (_scheduler is not { } scheduler) return;
        var waiting = scheduler.NumWaiting + _input.Reader.Count;
        var usage = scheduler.Pool.UsageRatio;
        _metrics.SetQueueState(waiting, scheduler.NumRunning, usage);
        _load = new EngineLoad(waiting, scheduler.NumRunning, usage, 0, false,
            scheduler.PrefixCache.QueriedTokens, scheduler.PrefixCache.HitTokens, _preemptions);
    }
}
