using System.Collections.Concurrent;
using Spectre.Console;

namespace DeepSeek.Runtime.Download;

/// <summary>
/// Progress bars on the console: one for the whole snapshot, one per file while it transfers. Retries
/// go to standard error as they happen, so that logs show them even where no bars are drawn.
/// </summary>
public sealed class ConsoleDownloadProgress(ProgressContext context, HubSnapshot snapshot) : IDownloadProgress
{
    private readonly ProgressTask _total = context.AddTask($"{Markup.Escape(snapshot.Repository)} ({snapshot.Files.Count} files)", maxValue: Math.Max(1, snapshot.TotalBytes));
    private readonly ConcurrentDictionary<string, ProgressTask> _files = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _counted = new(StringComparer.Ordinal);
    private int _present;

    /// <summary>Files that were already in place, checked and kept.</summary>
    public int AlreadyPresent => _present;

    public void FileStarted(HubFile file, long resumedAt)
    {
        ArgumentNullException.ThrowIfNull(file);
        var task = _files.GetOrAdd(file.Path, _ => context.AddTask(Markup.Escape(file.Path), maxValue: Math.Max(1, file.Size)));
        task.Value = resumedAt;
        // The total counts each byte once, however often a file restarts.
        var before = _counted.GetValueOrDefault(file.Path);
        _counted[file.Path] = resumedAt;
        _total.Increment(resumedAt - before);
    }

    public void BytesReceived(HubFile file, long count)
    {
        ArgumentNullException.ThrowIfNull(file);
        _files[file.Path].Increment(count);
        _counted.AddOrUpdate(file.Path, count, (_, value) => value + count);
        _total.Increment(count);
    }

    public void FileRetrying(HubFile file, int attempt, string reason)
    {
        ArgumentNullException.ThrowIfNull(file);
        Console.Error.WriteLine($"download: {file.Path}: {reason}; resuming (attempt {attempt + 1})");
    }

    public void FileDone(HubFile file, bool alreadyPresent)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (alreadyPresent)
        {
            Interlocked.Increment(ref _present);
            _total.Increment(file.Size);
            return;
        }
        var task = _files[file.Path];
        task.Value = task.MaxValue;
        task.StopTask();
        _total.Increment(file.Size - _counted.GetValueOrDefault(file.Path));
        _counted[file.Path] = file.Size;
    }
}
