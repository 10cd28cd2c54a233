using System.Security.Cryptography;
using System.Text;
using DeepSeek.Gateway.Configuration;

namespace DeepSeek.Gateway.Keys;

/// <summary>The configured keys by the SHA-256 of their text; empty means the gateway is open.</summary>
internal sealed class KeyTable
{
    private readonly Dictionary<string, KeyConfig> _byHash;

    public KeyTable(IEnumerable<KeyConfig> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        _byHash = keys.ToDictionary(k => k.Sha256.ToLowerInvariant(), StringComparer.Ordinal);
    }

    public bool IsOpen => _byHash.Count == 0;

    public IEnumerable<KeyConfig> All => _byHash.Values;

    /// <summary>The key whose hash is that of <paramref name="presented"/>; a dictionary lookup on the hash tells nothing about the key's text.</summary>
    public KeyConfig? Find(string presented) => _byHash.GetValueOrDefault(HashHex(presented));

    public static string HashHex(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
}
