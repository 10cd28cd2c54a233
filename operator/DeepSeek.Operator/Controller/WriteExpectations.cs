using System.Collections.Concurrent;

namespace DeepSeek.Operator.Controller;

/// <summary>
/// What this operator wrote and its caches have not shown yet (client-go controllers call these
/// expectations). A reconcile that runs between a write and the watch event bringing it back reads
/// the state from before the write; without this it would create the child again (409
/// AlreadyExists) or write the same status on a stale resourceVersion (409 Conflict), one wasted
/// request each, and a retry.
/// </summary>
public sealed class WriteExpectations(TimeProvider time)
{
    /// <summary>How long a write is waited for before the cache is believed instead (a lost event is healed by the next resync).</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<string, DateTimeOffset> created = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (string? ReadVersion, string Status)> statuses = new(StringComparer.Ordinal);

    private long lastSweepTicks;

    /// <summary>A child this process created: until the cache shows it, do not create it again.</summary>
    public void Created(string childKey)
    {
        var now = time.GetUtcNow();
        created[childKey] = now;
        // Children of a model deleted before its cache caught up are never seen: forgotten once past patience,
        // swept at most once per patience (a sweep on every create made a cold start of 1,000 models quadratic).
        var last = Interlocked.Read(ref lastSweepTicks);
        if (now.UtcTicks - last < Patience.Ticks || Interlocked.CompareExchange(ref lastSweepTicks, now.UtcTicks, last) != last) return;
        foreach (var (key, at) in created)
            if (now - at >= Patience) created.TryRemove(key, out _);
    }

    /// <summary>Whether <paramref name="childKey"/> was created moments ago (and the cache has not caught up).</summary>
    public bool AwaitingCreate(string childKey) =>
        created.TryGetValue(childKey, out var at) && time.GetUtcNow() - at < Patience;

    /// <summary>The cache shows the child: nothing to wait for.</summary>
    public void Seen(string childKey) => created.TryRemove(childKey, out _);

    /// <summary>The status written on a model read at <paramref name="readVersion"/>.</summary>
    public void StatusWritten(string modelKey, string? readVersion, string status) => statuses[modelKey] = (readVersion, status);

    /// <summary>Whether the same status was already written on this very read of the model (its event has not arrived yet).</summary>
    public bool StatusPending(string modelKey, string? readVersion, string status) =>
        statuses.TryGetValue(modelKey, out var written) && written.ReadVersion == readVersion && written.Status == status;

    public void Forget(string modelKey) => statuses.TryRemove(modelKey, out _);
}
