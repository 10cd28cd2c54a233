namespace DeepSeek.Gateway.Routing;

/// <summary>
/// Highest-random-weight hashing: each key prefers the endpoint with the highest score of (key, endpoint).
/// Adding or removing an endpoint moves only the keys that preferred it, so the prefix caches of the
/// others stay warm. Stable across processes and restarts (FNV-1a, not string.GetHashCode, which is seeded per process).
/// </summary>
internal static class RendezvousHash
{
    private const ulong FnvOffset = 14695981039346656037;
    private const ulong FnvPrime = 1099511628211;

    public static ulong Hash(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var hash = FnvOffset;
        foreach (var c in text)
        {
            hash = (hash ^ (byte)c) * FnvPrime;
            hash = (hash ^ (byte)(c >> 8)) * FnvPrime;
        }
        return hash;
    }

    /// <summary>The score of <paramref name="key"/> on the endpoint whose URL hashes to <paramref name="endpoint"/>: both mixed (splitmix64's finaliser) so that close inputs score far apart.</summary>
    public static ulong Score(ulong key, ulong endpoint)
    {
        var z = key ^ (endpoint * 0x9E3779B97F4A7C15);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
