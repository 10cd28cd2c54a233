using System.Security.Cryptography;
using System.Text;

namespace DeepSeek.Runtime.Api.Auth;

/// <summary>
/// The configured API key. Comparison hashes both sides first so that it takes the same time
/// whatever the length or content of the guess.
/// </summary>
public sealed class ApiKey
{
    private readonly byte[] _hash;

    public ApiKey(string key)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        _hash = SHA256.HashData(Encoding.UTF8.GetBytes(key));
    }

    public bool Matches(string? candidate) =>
        candidate is not null && CryptographicOperations.FixedTimeEquals(_hash, SHA256.HashData(Encoding.UTF8.GetBytes(candidate)));

    /// <summary>Accepts <c>Authorization: Bearer &lt;key&gt;</c> (scheme case-insensitive).</summary>
    public bool MatchesAuthorizationHeader(string? header)
    {
        const string scheme = "Bearer ";
        if (header is null || !header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        return Matches(header[scheme.Length..].Trim());
    }

    /// <summary>The key from <c>--api-key</c>, else the first line of <c>--api-key-file</c>; null when neither is set.</summary>
    /// <exception cref="InvalidOperationException">Both are set, or the file is missing or empty.</exception>
    public static ApiKey? Resolve(string? key, string? keyFile)
    {
        if (!string.IsNullOrWhiteSpace(key) && !string.IsNullOrWhiteSpace(keyFile))
            throw new InvalidOperationException("Set either --api-key or --api-key-file, not both.");
        if (!string.IsNullOrWhiteSpace(key)) return new ApiKey(key.Trim());
        if (string.IsNullOrWhiteSpace(keyFile)) return null;
        if (!File.Exists(keyFile)) throw new InvalidOperationException($"--api-key-file '{keyFile}' does not exist; point it at a file holding the key.");
        var text = File.ReadLines(keyFile).FirstOrDefault()?.Trim();
        return string.IsNullOrEmpty(text)
            ? throw new InvalidOperationException($"--api-key-file '{keyFile}' is empty; write the key on its first line.")
            : new ApiKey(text);
    }
}
