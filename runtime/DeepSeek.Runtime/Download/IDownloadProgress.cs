namespace DeepSeek.Runtime.Download;

/// <summary>What a download reports while it runs (called from several files' tasks at once).</summary>
public interface IDownloadProgress
{
    /// <summary>A file starts (or restarts) transferring, <paramref name="resumedAt"/> bytes already on disk.</summary>
    void FileStarted(HubFile file, long resumedAt);

    void BytesReceived(HubFile file, long count);

    /// <summary>A transfer broke off and is tried again from where it stopped.</summary>
    void FileRetrying(HubFile file, int attempt, string reason);

    /// <summary>The file is in place and its checksum matched; <paramref name="alreadyPresent"/>: nothing was transferred.</summary>
    void FileDone(HubFile file, bool alreadyPresent);
}
