namespace DeepSeek.Runtime.Download;

/// <summary>A download that cannot succeed as asked (unknown repository, refused token, bad checksum); the message says why.</summary>
public sealed class HubException(string message) : Exception(message);
