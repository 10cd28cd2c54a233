using DeepSeek.Gateway.Configuration;
using DeepSeek.Gateway.Upstream;
using Microsoft.Extensions.Caching.Memory;

namespace DeepSeek.Gateway.Caching;

/// <summary>A response kept to answer the same request again: what the client got, which variant produced it, and its token counts.</summary>
internal sealed record CachedResponse(string ContentType, byte[] Body, string Variant, TokenUsage? Usage, DateTimeOffset ExpiresAt);

/// <summary>
/// One model's exact-response cache: at most <see cref="CacheConfig.MaxEntries"/> (each entry counts 1
/// against the memory cache's size limit; when full, new entries are dropped until compaction frees
/// room), each for <see cref="CacheConfig.TtlSeconds"/> by the gateway's <see cref="TimeProvider"/>.
/// </summary>
internal sealed class ResponseCache : IDisposable
{
    private readonly MemoryCache _cache;
    private readonly TimeSpan _ttl;
    private readonly TimeProvider _time;

    public ResponseCache(CacheConfig config, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(config);
        _cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = config.MaxEntries });
        _ttl = TimeSpan.FromSeconds(config.TtlSeconds);
        _time = time;
    }

    public CachedResponse? Get(string key)
    {
        if (!_cache.TryGetValue(key, out CachedResponse? entry) || entry is null) return null;
        // The expiry is checked by our clock, not the memory cache's, so that it follows the TimeProvider (tests move it).
        if (_time.GetUtcNow() < entry.ExpiresAt) return entry;
        _cache.Remove(key);
        return null;
    }

    public void Put(string key, string contentType, byte[] body, string variant, TokenUsage? usage)
    {
        var entry = new CachedResponse(contentType, body, variant, usage, _time.GetUtcNow() + _ttl);
        _cache.Set(key, entry, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = _ttl });
    }

    public void Dispose() => _cache.Dispose();
}
