using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace DeepSeek.Runtime.Download;

/// <summary>How the hub identifies a file's content.</summary>
public enum ChecksumKind
{
    /// <summary>Files in LFS (weights): the LFS object id is the SHA-256 of the content.</summary>
    Sha256,

    /// <summary>Files in git itself (config, tokenizer): the git blob id, SHA-1 of <c>"blob {size}\0"</c> and the content.</summary>
    GitBlobSha1,
}

/// <summary>The checksum a file must have, in lowercase hex.</summary>
public sealed record FileChecksum(ChecksumKind Kind, string Hex)
{
    public string Algorithm => Kind == ChecksumKind.Sha256 ? "sha256" : "git blob sha1";

    /// <summary>A hash primed for a file of <paramref name="size"/> bytes; append the content, then compare with <see cref="Matches"/>.</summary>
    public IncrementalHash Begin(long size)
    {
        if (Kind == ChecksumKind.Sha256) return IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
#pragma warning disable CA5350 // SHA-1 is what git names blobs by; it identifies content here, it secures nothing.
        var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
#pragma warning restore CA5350
        hash.AppendData(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"blob {size}\0")));
        return hash;
    }

    public bool Matches(string hex) => string.Equals(Hex, hex, StringComparison.OrdinalIgnoreCase);

    public static string HexOf(IncrementalHash hash)
    {
        ArgumentNullException.ThrowIfNull(hash);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
