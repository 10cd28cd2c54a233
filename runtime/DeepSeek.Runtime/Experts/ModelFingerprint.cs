using System.Security.Cryptography;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// What ranks compare before computing for each other: a hash of the checkpoint's config.json and
/// the names and sizes of its weight files. Ranks pointed at different checkpoints (a half-rolled-out
/// model update) would produce wrong tokens silently; this turns that into a named not-ready reason.
/// </summary>
public static class ModelFingerprint
{
    public static string Of(Hosting.ModelFolder model)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(model.ConfigJson.Span);
        foreach (var file in Directory.EnumerateFiles(model.Directory, "*.safetensors").Order(StringComparer.Ordinal))
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes($"\n{Path.GetFileName(file)}:{new FileInfo(file).Length}"));
        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }
}
