using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Scheduling;
using DeepSeek.Engine.Telemetry;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Engine.Output;

/// <summary>
/// The output side of the engine, vLLM v1's output processor: takes what the scheduler made of a step
/// (<see cref="RequestProgress"/>) and turns it into each request's stream — detokenisation and stop
/// strings (<see cref="Text.OutputTextAssembler"/>), timings and metrics, and completion (the final
/// event, the admission ticket, the cancellation registration). Every request is processed on its own:
/// an exception while producing one request's output ends that request with an error and leaves the
/// others alone. Engine thread only.
/// </summary>
internal sealed partial class OutputProcessor(EngineMetrics metrics, TokenRateWindow rate, ILogger logger)
{
    private readonly Dictionary<string, ActiveRequest> _requests = [];
    // The step's generated tokens per LoRA adapter (the rest are the base model's), for RecordGenerated.
    private readonly Dictionary<string, int> _generatedByAdapter = new(StringComparer.Ordinal);

    public int Count => _requests.Count;

    public IEnumerable<string> RequestIds => _requests.Keys;

    public void Add(ActiveRequest active)
    {
        ArgumentNullException.ThrowIfNull(active);
        _requests[active.Request.Id] = active;
    }

    /// <summary>A request's first step: it leaves the bounded queue and its queue time is measured.</summary>
    public void MarkScheduled(IEnumerable<ScheduledSequence> sequences)
    {
        foreach (var sequence in sequences)
        {
            if (!_requests.TryGetValue(sequence.Request.Id, out var active) || active.Scheduled) continue;
            active.Scheduled = true;
            active.Ticket.MarkRunning();
            if (active.Timings.MarkScheduled() is { } queued) metrics.RecordQueueTime(queued, active.Request.ModelLabel);
        }
    }

    /// <summary>
    /// Emits the step's events. Returns the requests the scheduler must still finish, with the reason:
    /// a stop string found in the text, or a request whose output failed.
    /// </summary>
    public IReadOnlyList<(string RequestId, FinishReason Reason)> Process(IReadOnlyList<RequestProgress> progress, out int generatedTokens)
    {
        ArgumentNullException.ThrowIfNull(progress);
        var finish = new List<(string, FinishReason)>();
        generatedTokens = 0;
        _generatedByAdapter.Clear();
        foreach (var item in progress)
        {
            if (!_requests.TryGetValue(item.Request.Id, out var active)) continue;
            if (item.NewTokenId is not { } token)
            {
                if (item.FinishReason is { } reason) End(active, reason);
                continue;
            }
            generatedTokens++;
            var label = item.Request.ModelLabel;
            if (label is not null) _generatedByAdapter[label] = _generatedByAdapter.GetValueOrDefault(label) + 1;
            try
            {
                var (firstToken, interToken) = active.Timings.MarkToken();
                if (firstToken is { } ttft) metrics.RecordTimeToFirstToken(ttft, label);
                if (interToken is { } itl) metrics.RecordInterTokenLatency(itl, label);
                var tokenEvent = active.Assembler.OnToken(token, item.Logprobs, item.FinishReason, item.Request.Usage);
                if (active.Assembler.StopStringHit && item.FinishReason is null) finish.Add((item.Request.Id, FinishReason.Stop));
                active.Output.TryWrite(tokenEvent);
                if (tokenEvent.FinishReason is { } done) Complete(active, done, null);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                LogOutputFailed(logger, e, item.Request.Id, token);
                Fail(active, $"Producing the output of token {token} failed: {e.Message}", FailureReasons.Output);
                if (item.FinishReason is null) finish.Add((item.Request.Id, FinishReason.Error));
            }
        }
        return finish;
    }

    /// <summary>Ends a request that stops without a new token (cancelled).</summary>
    public void End(string requestId, FinishReason reason)
    {
        if (_requests.TryGetValue(requestId, out var active)) End(active, reason);
    }

    /// <summary>Ends a request with an error event carrying <paramref name="message"/> and <paramref name="failureReason"/>.</summary>
    public void Fail(string requestId, string message, string failureReason)
    {
        if (_requests.TryGetValue(requestId, out var active)) Fail(active, message, failureReason);
    }

    /// <summary>Ends a request that never reached the scheduler (cancelled while queued, refused by it, or left in the input at stop).</summary>
    public void EndUnscheduled(ActiveRequest active, FinishReason reason, string? message = null, string? failureReason = null)
    {
        ArgumentNullException.ThrowIfNull(active);
        _requests[active.Request.Id] = active;
        if (reason == FinishReason.Error) Fail(active, message ?? "The request failed.", failureReason ?? FailureReasons.Invalid);
        else End(active, reason);
    }

    /// <summary>Ends a request the scheduler refused as invalid, naming the field at fault so the client gets a 400, not an engine error.</summary>
    public void Refuse(ActiveRequest active, InvalidRequestException invalid)
    {
        ArgumentNullException.ThrowIfNull(active);
        ArgumentNullException.ThrowIfNull(invalid);
        _requests[active.Request.Id] = active;
        var last = FinalEvent(FinishReason.Error, active, invalid.Message, FailureReasons.Invalid) with { ErrorParam = invalid.Param };
        Close(active, last, FinishReason.Error, FailureReasons.Invalid);
    }

    private void End(ActiveRequest active, FinishReason reason)
    {
        var failure = reason == FinishReason.Cancelled ? FailureReasons.Cancelled : null;
        Close(active, FinalEvent(reason, active, null, failure), reason, failure);
    }

    private void Fail(ActiveRequest active, string message, string failureReason) =>
        Close(active, FinalEvent(FinishReason.Error, active, message, failureReason), FinishReason.Error, failureReason);

    private static TokenEvent FinalEvent(FinishReason reason, ActiveRequest active, string? message, string? failureReason) =>
        Text.OutputTextAssembler.OnEnd(reason, active.Request.Usage, message, failureReason);

    private void Close(ActiveRequest active, TokenEvent last, FinishReason reason, string? failureReason)
    {
        active.Output.TryWrite(last);
        Complete(active, reason, failureReason);
    }

    private void Complete(ActiveRequest active, FinishReason reason, string? failureReason)
    {
        if (!_requests.Remove(active.Request.Id)) return; // completed already
        active.Output.TryComplete();
        active.Registration.Dispose();
        var label = active.Request.ModelLabel;
        metrics.AddPromptTokens(active.Request.NumPromptTokens, label);
        metrics.RecordEndToEndLatency(active.Timings.MarkFinished(), label);
        if (reason is FinishReason.Stop or FinishReason.Length) metrics.RecordSuccess(reason, label);
        else metrics.RecordFailure(failureReason ?? (reason == FinishReason.Cancelled ? FailureReasons.Cancelled : FailureReasons.ModelStep), label);
        active.Ticket.Dispose();
    }

    /// <summary>Tokens of the step <see cref="Process"/> saw, for the generation counter (per adapter) and the tokens/s window.</summary>
    public void RecordGenerated(int tokens)
    {
        var adapters = 0;
        foreach (var (adapter, count) in _generatedByAdapter)
        {
            metrics.AddGenerationTokens(count, adapter);
            adapters += count;
        }
        metrics.AddGenerationTokens(tokens - adapters);
        rate.Add(tokens);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Producing the output of request {RequestId} failed at token {TokenId}; the request ends with an error and the engine goes on.")]
    private static partial void LogOutputFailed(ILogger logger, Exception exception, string requestId, int tokenId);
}
