namespace DeepSeek.Operator.Controller;

/// <summary>
/// The controller's work queue, after client-go's: a key queued many times is processed once; a key
/// is never processed by two workers at once (added while in progress, it runs again after);
/// failures back off per key exponentially (<see cref="AddRateLimited"/>), and all retries together
/// are bounded by a token bucket so a failing API server is not flooded.
/// </summary>
public sealed class WorkQueue : IDisposable
{
    private readonly object gate = new();
    private readonly Queue<string> ready = new();
    private readonly HashSet<string> dirty = [];
    private readonly HashSet<string> processing = [];
    private readonly Dictionary<string, int> failures = [];
    private readonly Dictionary<string, (DateTimeOffset Due, ITimer Timer)> waiting = [];
    private readonly SemaphoreSlim available = new(0);
    private readonly TimeProvider time;
    private readonly WorkQueueOptions options;
    private double tokens;
    private DateTimeOffset tokensAt;
    private bool shutDown;

    public WorkQueue(TimeProvider time, WorkQueueOptions? options = null)
    {
        this.time = time;
        this.options = options ?? new WorkQueueOptions();
        tokens = this.options.Burst;
        tokensAt = time.GetUtcNow();
    }

    /// <summary>Keys ready to be processed (not counting those in progress or waiting for a delay).</summary>
    public int Depth { get { lock (gate) return ready.Count; } }

    public void Add(string key)
    {
        lock (gate)
        {
            if (shutDown || !dirty.Add(key)) return;
            if (processing.Contains(key)) return;
            ready.Enqueue(key);
        }
        available.Release();
    }

    /// <summary>Adds the key once <paramref name="delay"/> has passed; an earlier pending add wins over a later one.</summary>
    public void AddAfter(string key, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            Add(key);
            return;
        }
        lock (gate)
        {
            if (shutDown) return;
            var due = time.GetUtcNow() + delay;
            if (waiting.TryGetValue(key, out var pending))
            {
                if (pending.Due <= due) return;
                pending.Timer.Dispose();
            }
            var timer = time.CreateTimer(_ => Fire(key), null, delay, Timeout.InfiniteTimeSpan);
            waiting[key] = (due, timer);
        }
    }

    /// <summary>Re-adds a key that failed, after its backoff: base × 2^failures, capped, and no sooner than the bucket allows.</summary>
    public TimeSpan AddRateLimited(string key)
    {
        TimeSpan delay;
        lock (gate)
        {
            var count = failures.GetValueOrDefault(key);
            failures[key] = count + 1;
            var backoff = options.BaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(count, 30));
            var perKey = TimeSpan.FromMilliseconds(Math.Min(backoff, options.MaxDelay.TotalMilliseconds));
            var bucket = Reserve();
            delay = perKey > bucket ? perKey : bucket;
        }
        AddAfter(key, delay);
        return delay;
    }

    /// <summary>Clears a key's failure count after it succeeded.</summary>
    public void Forget(string key)
    {
        lock (gate) failures.Remove(key);
    }

    public int Failures(string key)
    {
        lock (gate) return failures.GetValueOrDefault(key);
    }

    /// <summary>Waits for the next key; the caller must call <see cref="Done"/> with it.</summary>
    public async Task<string> TakeAsync(CancellationToken cancellationToken)
    {
        await available.WaitAsync(cancellationToken);
        lock (gate)
        {
            var key = ready.Dequeue();
            dirty.Remove(key);
            processing.Add(key);
            return key;
        }
    }

    public void Done(string key)
    {
        var again = false;
        lock (gate)
        {
            processing.Remove(key);
            if (dirty.Contains(key) && !shutDown)
            {
                ready.Enqueue(key);
                again = true;
            }
        }
        if (again) available.Release();
    }

    public void ShutDown()
    {
        lock (gate)
        {
            shutDown = true;
            foreach (var (_, pending) in waiting) pending.Timer.Dispose();
            waiting.Clear();
        }
    }

    public void Dispose()
    {
        ShutDown();
        available.Dispose();
    }

    private void Fire(string key)
    {
        lock (gate) waiting.Remove(key);
        Add(key);
    }

    /// <summary>Token bucket (caller holds the lock): the wait before one more retry may go out.</summary>
    private TimeSpan Reserve()
    {
        var now = time.GetUtcNow();
        var refilled = Math.Min(options.Burst, tokens + (now - tokensAt).TotalSeconds * options.RetriesPerSecond);
        var wait = refilled >= 1 ? TimeSpan.Zero : TimeSpan.FromSeconds((1 - refilled) / options.RetriesPerSecond);
        // Taking the token now, even into debt, is the reservation: the next caller waits longer.
        tokens = refilled - 1;
        tokensAt = now;
        return wait;
    }
}
