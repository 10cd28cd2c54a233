using System.Security.Cryptography;
using System.Text;
using DeepSeek.Gateway.Configuration;

namespace DeepSeek.Gateway.Keys;

/// <summary>
/// The keys by the SHA-256 of their text. Open (anyone may call) only when it has no keys and was not
/// made <paramref name="closed"/>: keys read from Secrets close it from the start, so a Secret that is
/// missing, empty or not yet read refuses every caller rather than letting everyone in.
/// </summary>
internal sealed class KeyTable(IEnumerable<KeyConfig> keys, bool closed = false)
{
    private volatile Dictionary<string, KeyConfig> _byHash = ByHash(keys);

    public bool IsOpen => !closed && _byHash.Count == 0;

    public IEnumerable<KeyConfig> All => _byHash.Values;

    /// <summary>The key whose hash is that of <paramref name="presented"/>; a dictionary lookup on the hash tells nothing about the key's text.</summary>
    public KeyConfig? Find(string presented) => _byHash.GetValueOrDefault(HashHex(presented));

    /// <summary>Replaces every key at once (a Secret changed): a request sees the old table or the new one, never half of each.</summary>
    public void Replace(IEnumerable<KeyConfig> keys) => _byHash = ByHash(keys);

    public static string HashHex(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    private static Dictionary<string, KeyConfig> ByHash(IEnumerable<KeyConfig> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        return keys.ToDictionary(k => k.Sha256.ToLowerInvariant(), StringComparer.Ordinal);
    }
}
