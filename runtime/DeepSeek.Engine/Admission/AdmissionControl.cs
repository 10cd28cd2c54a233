using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.Admission;

/// <summary>
/// The gate in front of the engine, called from request handlers on any thread, for requests that
/// <see cref="RequestValidator"/> accepted. Refuses at once, before a request takes any resources: a
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
    public AdmissionControl(EngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        MaxQueuedRequests = options.MaxQueuedRequests;
    }

    public int MaxQueuedRequests { get; }

    /// <summary>Admitted, not yet given a first step.</summary>
    public int QueuedCount { get { lock (_lock) return _queued; } }

    /// <summary>Admitted and not finished.</summary>
    public int InFlightCount { get { lock (_lock) return _inFlight; } }

    public bool IsDraining { get { lock (_lock) return _draining; } }

    /// <summary>Completes once draining has begun and every admitted request has finished.</summary>
    public Task WhenDrained => _idle.Task;

    /// <summary>Counts a validated request in; throws <see cref="EngineOverloadedException"/> or <see cref="EngineDrainingException"/>.</summary>
    public AdmissionTicket Admit()
    {
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
