namespace DeepSeek.Runtime.Download;

/// <summary>A repository's files at one commit (a branch or tag resolved once, so every file comes from the same commit).</summary>
public sealed record HubSnapshot(string Repository, string Commit, IReadOnlyList<HubFile> Files)
{
    public long TotalBytes => Files.Sum(f => f.Size);
}

/// <summary>One file of a hub repository at a commit: its path in the repository, size and published checksum.</summary>
public sealed record HubFile(string Path, long Size, FileChecksum Checksum);
