using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.Admission;

/// <summary>
/// The gate in front of the engine, called from request handlers on any thread. Refuses at once,
/// before a request takes any resources: bad parameters, prompts that do not fit the context, a
/// full waiting queue (retryable), and everything while draining. Counts what it let in so a drain
/// knows when the engine is idle. Preempted requests are already admitted and never count against
/// the queue bound.
/// </summary>
public sealed class AdmissionControl
{
    private readonly Lock _lock = new();
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _queued;
    private int _inFlight;
    private bool _draining;

    /// <param name="options">The queue bound (<see cref="EngineOptions.MaxQueuedRequests"/>).</param>
    /// <param name="maxContextTokens">
    /// Prompt plus <c>max_tokens</c> never exceed it: <see cref="EngineOptions.ContextTokens"/>, the
    /// smaller of the model's context and what the KV pool holds, so an admitted request can always run to its end alone.
    /// </param>
    public AdmissionControl(EngineOptions options, int maxContextTokens)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        ArgumentOutOfRangeException.ThrowIfLessThan(maxContextTokens, 2);
        MaxQueuedRequests = options.MaxQueuedRequests;
        MaxContextTokens = maxContextTokens;
    }

    public int MaxQueuedRequests { get; }

    public int MaxContextTokens { get; }

    /// <summary>Admitted, not yet given a first step.</summary>
    public int QueuedCount { get { lock (_lock) return _queued; } }

    /// <summary>Admitted and not finished.</summary>
    public int InFlightCount { get { lock (_lock) return _inFlight; } }

    public bool IsDraining { get { lock (_lock) return _draining; } }

    /// <summary>Completes once draining has begun and every admitted request has finished.</summary>
    public Task WhenDrained => _idle.Task;

    /// <summary>Checks a request against the limits without counting it: pure, for validation-only paths.</summary>
    public void Validate(int numPromptTokens, SamplingParameters sampling)
    {
        ArgumentNullException.ThrowIfNull(sampling);
        sampling.Validate();
        var context = MaxContextTokens;
        if (numPromptTokens < 1)
            throw new InvalidRequestException("prompt", "The prompt is empty; give at least one token.");
        if (numPromptTokens >= context)
            throw new InvalidRequestException("prompt",
                $"This model's maximum context length is {context} tokens, and the prompt has {numPromptTokens} tokens, leaving no room to generate. Shorten the prompt to at most {context - 1} tokens.",
                "context_length_exceeded");
        if (sampling.MaxTokens is { } max && numPromptTokens + max > context)
            throw new InvalidRequestException("max_tokens",
                $"This model's maximum context length is {context} tokens. However, you requested {numPromptTokens + max} tokens ({numPromptTokens} in the prompt, {max} in max_tokens). Reduce max_tokens to at most {context - numPromptTokens} or shorten the prompt.",
                "context_length_exceeded");
    }

    /// <summary>Validates and counts the request in; throws <see cref="InvalidRequestException"/>, <see cref="EngineOverloadedException"/> or <see cref="EngineDrainingException"/>.</summary>
    public AdmissionTicket Admit(int numPromptTokens, SamplingParameters sampling)
    {
        Validate(numPromptTokens, sampling);
        lock (_lock)
        {
            if (_draining) throw new EngineDrainingException();
            if (_queued >= MaxQueuedRequests) throw new EngineOverloadedException(MaxQueuedRequests);
            _queued++;
            _inFlight++;
        }
        return new AdmissionTicket(this);
    }

    /// <summary>Stops admitting; <see cref="WhenDrained"/> completes when in-flight work is done.</summary>
    public void BeginDrain()
    {
        lock (_lock)
        {
            _draining = true;
            if (_inFlight == 0) _idle.TrySetResult();
        }
    }

    internal void LeaveQueue()
    {
        lock (_lock) _queued--;
    }

    internal void Complete(bool leftQueue)
    {
        lock (_lock)
        {
            if (!leftQueue) _queued--;
            _inFlight--;
            if (_draining && _inFlight == 0) _idle.TrySetResult();
        }
    }
}
