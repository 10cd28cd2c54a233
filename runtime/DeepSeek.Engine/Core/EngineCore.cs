using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using DeepSeek.Engine.Admission;
using DeepSeek.Engine.Execution;
using DeepSeek.Engine.KvCache;
using DeepSeek.Engine.Output;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Scheduling;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Parallelism;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Engine.Core;

/// <summary>
/// The engine core, vLLM v1's EngineCore: one dedicated thread that creates the runner (so the model's
/// tensors belong to it), sizes the scheduler and admission from the settings, then loops — read the
/// input channel, apply cancellations, <see cref="Scheduler.Schedule"/>, <see cref="IModelRunner.Execute"/>
/// (forward and sampling), <see cref="Scheduler.Update"/>, and hand the progress to the
/// <see cref="OutputProcessor"/>. It owns the failure policy: a step that throws fails that step's
/// requests and the loop goes on; an unrecoverable fault, too many failed steps in a row, or any
/// exception escaping the loop fails the engine — every request ends with an error, the state turns
/// <see cref="EngineState.Failed"/> and <see cref="Stopped"/> completes, so nothing hangs.
/// </summary>
internal sealed partial class EngineCore
{
    private readonly EngineOptions _options;
    private readonly Func<IModelRunner> _createRunner;
    private readonly EngineMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Action<StepTiming>? _onStep;
    private readonly ConcurrentQueue<string> _cancellations = new();
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly OutputProcessor _outputs;
    private readonly Thread _thread;
    private Scheduler? _scheduler;
    private IModelRunner? _runner;
    private volatile EngineLoad _load = new(0, 0, 0, 0, false);
    private volatile bool _cancelAll;
    private volatile bool _stopRequested;
    private volatile EngineState _state = EngineState.Starting;
    private int _consecutiveStepFailures;
    private int _idleTurnsInARow;
    // The load was published since the engine last ran a step (PublishLoad is not repeated while idle).
    private bool _idlePublished;
    private long _preemptions;
    private long _reportedQueries;
    private long _reportedHits;

    public EngineCore(EngineOptions options, Func<IModelRunner> createRunner, EngineMetrics metrics, TokenRateWindow rate,
        ILogger logger, Action<StepTiming>? onStep)
    {
        _options = options;
        _createRunner = createRunner;
        _metrics = metrics;
        _logger = logger;
        _onStep = onStep;
        _outputs = new OutputProcessor(metrics, rate, logger);
        // Admission bounds the requests in flight to the engine; the headroom is for warm-ups and wake-ups.
        Input = Channel.CreateBounded<EngineWork>(new BoundedChannelOptions(options.MaxQueuedRequests + 16)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _thread = new Thread(Run) { IsBackground = true, Name = "deepseek-engine" };
    }

    public Channel<EngineWork> Input { get; }

    public Task Started => _started.Task;

    public Task Stopped => _stopped.Task;

    public bool IsAlive => _thread.IsAlive;

    public EngineState State => _state;

    /// <summary>Why the engine failed (set before <see cref="State"/> turns <see cref="EngineState.Failed"/>).</summary>
    public Exception? Failure { get; private set; }

    public bool StopRequested => _stopRequested;

    public EngineLoad Load => _load;

    // Set once by the engine thread before Started completes; read-only afterwards.
    public DeepSeekConfig Config { get; private set; } = null!;
    public int NumKvBlocks { get; private set; }
    public int MaxContextTokens { get; private set; }
    public TimeSpan ModelLoadTime { get; private set; }
    public IReadOnlyList<int> EosTokenIds { get; private set; } = [];
    public AdmissionControl? Admission { get; private set; }

    public void Start() => _thread.Start();

    public void Cancel(string requestId) => _cancellations.Enqueue(requestId);

    /// <summary>Cancels every request at the next step boundary (a drain that ran out of time).</summary>
    public void CancelAll()
    {
        _cancelAll = true;
        Wake();
    }

    public void RequestStop()
    {
        _stopRequested = true;
        Input.Writer.TryComplete();
    }

    public void Join(TimeSpan timeout)
    {
        if (_thread.IsAlive) _thread.Join(timeout);
    }

    public void Wake() => Input.Writer.TryWrite(EngineWork.Wake.Instance);

    // ───────────────────────────── engine thread ─────────────────────────────

    private void Run()
    {
        try
        {
            Initialise();
        }
        catch (Exception e)
        {
            Failure = e;
            _state = EngineState.Failed;
            LogStartFailed(_logger, e);
            _runner?.Dispose();
            _stopped.TrySetResult();
            _started.TrySetException(e);
            return;
        }
        var failed = false;
        try
        {
            Loop();
        }
        catch (Exception e)
        {
            // Whatever escapes the loop (an unrecoverable step, a bug in the engine's own bookkeeping) ends the engine, loudly.
            failed = true;
            Failure = e;
            _state = EngineState.Failed;
            LogEngineFailed(_logger, e, _outputs.Count);
        }
        finally
        {
            // Stopped must complete whatever happens here, or the host would wait forever.
            try
            {
                EndEverything(failed);
                _runner?.Dispose();
            }
            catch (Exception e)
            {
                LogCleanupFailed(_logger, e);
            }
            _runner = null;
            if (!failed) _state = EngineState.Stopped;
            _stopped.TrySetResult();
        }
    }

    private void Initialise()
    {
        var clock = Stopwatch.StartNew();
        _runner = _createRunner();
        ModelLoadTime = clock.Elapsed;
        Config = _runner.Config;
        NumKvBlocks = _runner.NumBlocks;
        var pool = new KvBlockPool(_runner.NumBlocks, _options.BlockSize);
        MaxContextTokens = _options.ContextTokens(Config.MaxPositionEmbeddings, pool.CapacityTokens);
        EosTokenIds = Config.EosTokenId is { } eos ? [eos] : [];
        _scheduler = new Scheduler(_options, MaxContextTokens, EosTokenIds, pool);
        Admission = new AdmissionControl(_options);
        _metrics.SetModelLoadTime(ModelLoadTime);
        PublishLoad();
        LogStarted(_logger, NumKvBlocks, _options.BlockSize, MaxContextTokens, Config.VocabSize, ModelLoadTime.TotalSeconds);
        _state = EngineState.Serving;
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
                foreach (var id in _outputs.RequestIds) scheduler.Cancel(id);
            if (_stopRequested) return;
            if (!scheduler.HasUnfinishedRequests)
            {
                // Once per idle spell: a lockstep rank loops here every turn (up to a thousand a second).
                if (!_idlePublished) PublishLoad();
                _idlePublished = true;
                if (TakeIdleTurn(out var open))
                {
                    if (!open) return;
                    continue;
                }
                // Idle: block on the input channel until work, a wake-up or completion (stop) arrives.
                if (!Input.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult()) return;
                continue;
            }
            Step(scheduler);
        }
    }

    /// <summary>
    /// A rank of a lockstep group never blocks for work of its own: its peers' forwards need it in every
    /// exchange, so with nothing to run it takes an idle turn (<see cref="IModelRunner.IdleTurn"/>), and
    /// waits for input only briefly between turns when no rank is stepping. False when not in such a group.
    /// </summary>
    /// <param name="open">False when the input channel completed (the engine stops).</param>
    private bool TakeIdleTurn(out bool open)
    {
        open = true;
        var turn = _runner!.IdleTurn();
        if (turn == LockstepTurn.Solo) return false;
        _idleTurnsInARow = turn == LockstepTurn.AllIdle ? Math.Min(_idleTurnsInARow + 1, LockstepIdle.QuietAfter) : 0;
        if (turn == LockstepTurn.JoinedPeers) return true;
        using var timeout = new CancellationTokenSource(LockstepIdle.Wait(turn, _idleTurnsInARow));
        try
        {
            open = Input.Reader.WaitToReadAsync(timeout.Token).AsTask().GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            // No work arrived meanwhile: the next turn.
        }
        return true;
    }

    private void ReadInput()
    {
        while (Input.Reader.TryRead(out var work))
        {
            // Any work may change what the load says (between-steps work may free cached blocks).
            _idlePublished = false;
            switch (work)
            {
                case EngineWork.Submit submit:
                    foreach (var active in submit.Requests) Accept(active);
                    break;
                case EngineWork.Embed embed:
                    RunEmbed(embed);
                    break;
                case EngineWork.WarmUp warmUp:
                    RunWarmUp(warmUp);
                    break;
                case EngineWork.BetweenSteps between:
                    // The work reports its own outcome (InferenceEngine.RunBetweenStepsAsync); it never fails the engine.
                    between.Work();
                    break;
            }
        }
    }

    private void Accept(ActiveRequest active)
    {
        if (active.Cancellation.IsCancellationRequested)
        {
            _outputs.EndUnscheduled(active, FinishReason.Cancelled);
            return;
        }
        try
        {
            _scheduler!.Add(active.Request);
            _outputs.Add(active);
        }
        catch (InvalidRequestException e)
        {
            _outputs.Refuse(active, e);
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
        foreach (var cancelled in step.Cancelled) _outputs.End(cancelled.Id, FinishReason.Cancelled);
        if (step.IsEmpty)
        {
            PublishLoad();
            // Nothing fits this step (only cancellations happened): look again after a short pause, not in a hot loop.
            if (scheduler.HasUnfinishedRequests && !TakeIdleTurn(out _)) Thread.Sleep(1);
            return;
        }

        _idleTurnsInARow = 0;
        _idlePublished = false;
        _outputs.MarkScheduled(step.Sequences);
        ModelRunnerOutput output;
        IReadOnlyList<RequestProgress> progress;
        try
        {
            output = _runner!.Execute(step);
            progress = scheduler.Update(step, output);
            _consecutiveStepFailures = 0;
        }
        catch (Exception e) when (e is not (UnrecoverableStepException or OutOfMemoryException))
        {
            FailStep(scheduler, step, e);
            return;
        }

        var finishes = _outputs.Process(progress, out var generated);
        foreach (var (requestId, reason) in finishes) scheduler.Finish(requestId, reason);

        var elapsed = Stopwatch.GetElapsedTime(started);
        _outputs.RecordGenerated(generated);
        foreach (var load in output.ExpertLoads)
        {
            // The ratio first: a scrape (which reads the counter before the gauge) that shows a step's
            // tokens then also shows that step's ratio.
            _metrics.SetExpertLoadImbalance(load.LayerIndex, ExpertLoad.ImbalanceRatio(load.TokensPerShard));
            _metrics.RecordExpertTokens(load.LayerIndex, load.TokensPerExpert);
        }
        PublishLoad();
        // Last, after the load snapshot: an observer of the step sees the engine as the step left it.
        if (_onStep is { } onStep)
        {
            var decodes = step.Sequences.Count(q => q.IsDecode);
            onStep(new StepTiming(step.TotalTokens - decodes, decodes, generated, elapsed) { MaskElapsed = output.MaskElapsed });
        }
    }

    /// <summary>
    /// A step that threw: its requests end with the error (their blocks go back to the pool) and the
    /// engine goes on, unless steps keep failing — then the device is not coming back, and the
    /// engine fails rather than turn every later request into an error.
    /// </summary>
    private void FailStep(Scheduler scheduler, SchedulerStep step, Exception error)
    {
        // A peer rank that is gone says nothing about this device: its steps fail until the rank is
        // back (the host turns not-ready meanwhile), but they never add up to failing the engine.
        var rankLost = error is ExpertTransportException;
        if (!rankLost) _consecutiveStepFailures++;
        var ids = step.Sequences.Select(s => s.Request.Id).ToList();
        LogStepFailed(_logger, error, ids.Count, _consecutiveStepFailures, _options.MaxConsecutiveStepFailures);
        var message = rankLost ? error.Message : $"The model step failed: {error.Message}";
        foreach (var id in ids)
        {
            scheduler.Finish(id, FinishReason.Error);
            _outputs.Fail(id, message, rankLost ? FailureReasons.ExpertRankUnavailable : FailureReasons.ModelStep);
        }
        PublishLoad();
        if (_consecutiveStepFailures >= _options.MaxConsecutiveStepFailures)
            throw new UnrecoverableStepException($"{_consecutiveStepFailures} model steps failed in a row; the last with: {error.Message}", error);
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
            LogEmbedFailed(_logger, e);
            embed.Done.TrySetException(e);
        }
    }

    /// <summary>One short prompt through the model on a borrowed block, which goes straight back to the pool.</summary>
    private void RunWarmUp(EngineWork.WarmUp warmUp)
    {
        var pool = _scheduler!.Pool;
        var blocks = new List<int>(1);
        if (!pool.TryAllocate(1, blocks))
        {
            warmUp.Done.TrySetResult(); // serving already: the engine is warm
            return;
        }
        try
        {
            _runner!.WarmUp(blocks[0]);
            warmUp.Done.TrySetResult();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            warmUp.Done.TrySetException(e);
        }
        finally
        {
            pool.Release(blocks[0]);
        }
    }

    /// <summary>
    /// On stop every request still known ends, the queued ones included: cancelled after a stop,
    /// with an error after a failure, so every stream gets its final event.
    /// </summary>
    private void EndEverything(bool failed)
    {
        _stopRequested = true;
        Input.Writer.TryComplete();
        var reason = failed ? FinishReason.Error : FinishReason.Cancelled;
        var message = failed ? $"The engine failed and stopped serving: {Failure?.Message}" : null;
        var failure = failed ? FailureReasons.EngineFailed : FailureReasons.Cancelled;
        while (Input.Reader.TryRead(out var work))
        {
            switch (work)
            {
                case EngineWork.Submit submit:
                    foreach (var queued in submit.Requests) _outputs.EndUnscheduled(queued, reason, message, failure);
                    break;
                case EngineWork.WarmUp warmUp when failed:
                    warmUp.Done.TrySetException(new InvalidOperationException(message));
                    break;
                case EngineWork.WarmUp warmUp:
                    warmUp.Done.TrySetCanceled();
                    break;
                case EngineWork.Embed embed:
                    embed.Done.TrySetException(failed ? new EngineDrainingException(message!) : new EngineDrainingException());
                    break;
            }
        }
        foreach (var id in _outputs.RequestIds.ToList())
        {
            _scheduler?.Finish(id, reason);
            if (failed) _outputs.Fail(id, message!, failure);
            else _outputs.End(id, reason);
        }
        PublishLoad();
    }

    private void PublishLoad()
    {
        if (_scheduler is not { } scheduler) return;
        var waiting = scheduler.NumWaiting + Input.Reader.Count;
        var usage = scheduler.Pool.UsageRatio;
        _metrics.SetQueueState(waiting, scheduler.NumRunning, usage);
        _load = new EngineLoad(waiting, scheduler.NumRunning, usage, 0, false,
            scheduler.PrefixCache.QueriedTokens, scheduler.PrefixCache.HitTokens, _preemptions);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Engine serving: {Blocks} KV blocks of {BlockSize} tokens, context {Context} tokens, vocabulary {Vocabulary}, model ready in {Seconds:0.0} s.")]
    private static partial void LogStarted(ILogger logger, int blocks, int blockSize, int context, int vocabulary, double seconds);

    /// <summary>Debug: the failure reaches whoever started the engine, which says it once (with the trace only for a bug).</summary>
    [LoggerMessage(Level = LogLevel.Debug, Message = "The engine could not start.")]
    private static partial void LogStartFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "A model step failed; its {Requests} request(s) end with an error and free their KV blocks ({Consecutive} failed step(s) in a row, the engine fails at {Limit}).")]
    private static partial void LogStepFailed(ILogger logger, Exception exception, int requests, int consecutive, int limit);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The engine failed and stopped; its {Requests} request(s) end with an error. The host should turn not-ready and exit.")]
    private static partial void LogEngineFailed(ILogger logger, Exception exception, int requests);

    [LoggerMessage(Level = LogLevel.Error, Message = "Ending the engine's requests or freeing its tensors failed.")]
    private static partial void LogCleanupFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "An embedding request failed.")]
    private static partial void LogEmbedFailed(ILogger logger, Exception exception);
}
