using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using DeepSeek.Gateway.Configuration;

namespace DeepSeek.Gateway.Keys;

/// <summary>
/// Each key's per-minute budget: requests through a <see cref="FixedWindowRateLimiter"/> and tokens as
/// counted from responses' <c>usage</c>, both over one window that starts anew each minute by the
/// gateway's <see cref="TimeProvider"/>: each window gets a fresh limiter (the limiter's own replenishment
/// reads the machine's clock, even when told to replenish), so the two counts share one window and tests
/// can move the clock.
/// </summary>
internal sealed class KeyLimits(TimeProvider time) : IDisposable
{
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    private readonly ConcurrentDictionary<string, KeyWindow> _windows = new(StringComparer.Ordinal);

    /// <summary>Null when the request may go on (one request counted); else how long until the window turns.</summary>
    public (bool Allowed, string? What, TimeSpan RetryAfter) TryAcquire(KeyConfig? key)
    {
        if (key is null || (key.RequestsPerMinute == 0 && key.TokensPerMinute == 0)) return (true, null, TimeSpan.Zero);
        var window = _windows.GetOrAdd(key.Id, _ => new KeyWindow(key, time.GetUtcNow()));
        return window.TryAcquire(key, time.GetUtcNow());
    }

    /// <summary>Adds a response's tokens to the key's window; past its limit, later requests of the window get 429.</summary>
    public void AddTokens(KeyConfig? key, long tokens)
    {
        if (key is null || key.TokensPerMinute == 0 || tokens <= 0) return;
        _windows.GetOrAdd(key.Id, _ => new KeyWindow(key, time.GetUtcNow())).AddTokens(tokens);
    }

    public void Dispose()
    {
        foreach (var window in _windows.Values) window.Dispose();
    }

    private sealed class KeyWindow(KeyConfig key, DateTimeOffset start) : IDisposable
    {
        private FixedWindowRateLimiter? _requests = NewLimiter(key);

        private readonly Lock _lock = new();
        private KeyConfig _key = key;
        private DateTimeOffset _start = start;
        private long _tokens;

        /// <param name="current">The key as the table has it now: reloaded keys (a Secret changed) bring their new limits.</param>
        /// <param name="now">The gateway's clock.</param>
        public (bool, string?, TimeSpan) TryAcquire(KeyConfig current, DateTimeOffset now)
        {
            lock (_lock)
            {
                if (current.RequestsPerMinute != _key.RequestsPerMinute)
                {
                    // A new request limit counts from here; the window and its tokens go on.
                    _requests?.Dispose();
                    _requests = NewLimiter(current);
                }
                _key = current;
                if (now - _start >= Window)
                {
                    // A new window: whole minutes since the first, so the windows stay aligned.
                    var elapsed = (now - _start).Ticks / Window.Ticks;
                    _start += Window * elapsed;
                    _tokens = 0;
                    _requests?.Dispose();
                    _requests = NewLimiter(current);
                }
                var retryAfter = _start + Window - now;
                if (current.TokensPerMinute > 0 && _tokens >= current.TokensPerMinute) return (false, "tokens per minute", retryAfter);
                if (_requests is not null)
                {
                    using var lease = _requests.AttemptAcquire();
                    if (!lease.IsAcquired) return (false, "requests per minute", retryAfter);
                }
                return (true, null, TimeSpan.Zero);
            }
        }

        public void AddTokens(long tokens)
        {
            lock (_lock) _tokens += tokens;
        }

        public void Dispose() => _requests?.Dispose();

        /// <summary>The window's request budget; its own window is longer than ours so that only we turn it.</summary>
        private static FixedWindowRateLimiter? NewLimiter(KeyConfig key) => key.RequestsPerMinute > 0
            ? new FixedWindowRateLimiter(new FixedWindowRateLimiterOptions
            {
                PermitLimit = key.RequestsPerMinute,
                Window = TimeSpan.FromDays(1),
                QueueLimit = 0,
                AutoReplenishment = false,
            })
            : null;
    }
}
