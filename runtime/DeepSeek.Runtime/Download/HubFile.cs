namespace DeepSeek.Runtime.Download;

/// <summary>One file of a hub repository at a commit: its path in the repository, size and published checksum.</summary>
public sealed record HubFile(string Path, long Size, FileChecksum Checksum);
