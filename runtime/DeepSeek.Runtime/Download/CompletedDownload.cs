using System.Text.Json;

namespace DeepSeek.Runtime.Download;

/// <summary>
/// The stamp <c>download --skip-if-complete</c> leaves in a folder after every file matched the hub's
/// checksum: which repository, revision and commit, and each file's size. A later run that finds the
/// stamp of the same repository and revision, with every file present at its size, is done without
/// asking the hub or hashing the weights again (a pod's init step on a filled volume, or a hub outage).
/// </summary>
public sealed record CompletedDownload(string Repository, string Revision, string Commit, IReadOnlyList<CompletedDownload.FileSize> Files)
{
    public const string FileName = ".download-complete.json";

    public sealed record FileSize(string Path, long Size);

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true };

    public static CompletedDownload Of(HubSnapshot snapshot, string revision)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        return new(snapshot.Repository, revision, snapshot.Commit, snapshot.Files.Select(f => new FileSize(f.Path, f.Size)).ToList());
    }

    /// <summary>The folder's stamp, or null when it has none or one that does not parse (then the full run decides).</summary>
    public static CompletedDownload? Read(string folder)
    {
        var path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<CompletedDownload>(File.ReadAllText(path), Json);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Written beside the files, through a temporary name, so that a stamp is never half written.</summary>
    public void Write(string folder)
    {
        var path = Path.Combine(folder, FileName);
        File.WriteAllText(path + SnapshotDownloader.PartialSuffix, JsonSerializer.Serialize(this, Json));
        File.Move(path + SnapshotDownloader.PartialSuffix, path, overwrite: true);
    }

    /// <summary>Whether this stamp is of <paramref name="repository"/> at <paramref name="revision"/> (as asked, or its commit) and every file is still there at its size.</summary>
    public bool Covers(string repository, string revision, string folder) =>
        string.Equals(Repository, repository, StringComparison.Ordinal)
        && (string.Equals(Revision, revision, StringComparison.Ordinal) || string.Equals(Commit, revision, StringComparison.OrdinalIgnoreCase))
        && Files is { Count: > 0 }
        && Files.All(f => new FileInfo(Path.Combine(folder, f.Path)) is { Exists: true } info && info.Length == f.Size);
}
