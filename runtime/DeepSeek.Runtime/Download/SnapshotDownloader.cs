using System.Buffers;
using System.Net;

namespace DeepSeek.Runtime.Download;

/// <summary>
/// Downloads a snapshot's files into a folder: several files at once, each into <c>FILE.incomplete</c>
/// that a later run (or a retry after a broken connection) continues with an HTTP Range request,
/// checksummed against the hub's listing before it is renamed into place. Files already in place are
/// checked and kept.
/// </summary>
public sealed class SnapshotDownloader(HubClient hub, IDownloadProgress progress, int parallelism, int attemptsPerFile = 5, TimeSpan? stallTimeout = null)
{
    public const string PartialSuffix = ".incomplete";

    /// <summary>A connection that delivers nothing for this long is dropped and resumed.</summary>
    private readonly TimeSpan _stallTimeout = stallTimeout ?? TimeSpan.FromSeconds(60);

    public async Task DownloadAsync(HubSnapshot snapshot, string folder, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        Directory.CreateDirectory(folder);
        await Parallel.ForEachAsync(snapshot.Files, new ParallelOptions { MaxDegreeOfParallelism = parallelism, CancellationToken = cancellationToken },
            (file, token) => new ValueTask(DownloadFileAsync(snapshot, file, Path.Combine(folder, file.Path), token))).ConfigureAwait(false);
    }

    private async Task DownloadFileAsync(HubSnapshot snapshot, HubFile file, string target, CancellationToken cancellationToken)
    {
        if (File.Exists(target) && new FileInfo(target).Length == file.Size && await HashOfAsync(file, target, file.Size, cancellationToken).ConfigureAwait(false) is var present && file.Checksum.Matches(present))
        {
            progress.FileDone(file, alreadyPresent: true);
            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var partial = target + PartialSuffix;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await TransferAsync(snapshot, file, partial, cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (Exception e) when (IsTransient(e, cancellationToken))
            {
                if (attempt >= attemptsPerFile)
                {
                    var kept = File.Exists(partial) ? new FileInfo(partial).Length : 0;
                    throw new HubException($"{file.Path}: the connection ended early or failed on each of {attempt} attempts (last: {e.Message.ReplaceLineEndings(" ")}); "
                        + $"{kept} of {file.Size} bytes are kept in {file.Path}{PartialSuffix} for the next run to resume.");
                }
                progress.FileRetrying(file, attempt, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(attempt), cancellationToken).ConfigureAwait(false);
            }
        }

        var length = new FileInfo(partial).Length;
        var actual = await HashOfAsync(file, partial, length, cancellationToken).ConfigureAwait(false);
        if (length != file.Size || !file.Checksum.Matches(actual))
        {
            File.Delete(partial);
            throw new HubException($"{file.Path}: got {length} bytes with {file.Checksum.Algorithm} {actual}, the hub lists {file.Size} bytes with {file.Checksum.Hex}; "
                + "the download was removed, run again.");
        }
        File.Move(partial, target, overwrite: true);
        progress.FileDone(file, alreadyPresent: false);
    }

    /// <summary>Appends the rest of the file to <paramref name="partial"/>, from where it ends.</summary>
    private async Task TransferAsync(HubSnapshot snapshot, HubFile file, string partial, CancellationToken cancellationToken)
    {
        var offset = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        if (offset > file.Size)
        {
            File.Delete(partial);
            offset = 0;
        }
        progress.FileStarted(file, offset);
        if (offset == file.Size) return;

        using var response = await hub.OpenAsync(snapshot, file, offset, cancellationToken).ConfigureAwait(false);
        if ((int)response.StatusCode >= 500) throw new HttpRequestException($"HTTP {(int)response.StatusCode} from {response.RequestMessage?.RequestUri}", null, response.StatusCode);
        await HubClient.EnsureSuccessAsync(response, snapshot.Repository, snapshot.Commit).ConfigureAwait(false);
        // A server that ignores Range sends the whole file: start over rather than append it.
        var resumed = offset > 0 && response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange?.From == offset;
        if (!resumed && offset > 0) progress.FileStarted(file, 0);

        // The listing's size is the most this file may be: a body announced or sent longer is not this file,
        // and is refused without writing past the size (a hostile hub could otherwise fill the disk).
        var from = resumed ? offset : 0;
        if (response.Content.Headers.ContentLength is { } announced && announced > file.Size - from)
        {
            File.Delete(partial);
            throw Longer(file, from + announced);
        }

        await using var output = new FileStream(partial, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        var longer = false;
        try
        {
            while (true)
            {
                using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                stall.CancelAfter(_stallTimeout);
                int read;
                try
                {
                    read = await body.ReadAsync(buffer, stall.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new IOException($"no data for {_stallTimeout.TotalSeconds} s after {output.Length} of {file.Size} bytes");
                }
                if (read == 0) break;
                if (read > file.Size - output.Length)
                {
                    longer = true;
                    break;
                }
                await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                progress.BytesReceived(file, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        if (longer)
        {
            // Content that cannot be this file: nothing of it is kept, not even for a resume.
            await output.DisposeAsync().ConfigureAwait(false);
            File.Delete(partial);
            throw Longer(file, null);
        }
        if (output.Length < file.Size) throw new IOException($"the connection ended after {output.Length} of {file.Size} bytes");
    }

    private static HubException Longer(HubFile file, long? announced) =>
        new($"{file.Path}: the hub sent more than the {file.Size} bytes its listing gives{(announced is { } total ? $" ({total} bytes)" : "")}; "
            + "the file is not what the listing says, and nothing of it was kept.");

    private static async Task<string> HashOfAsync(HubFile file, string path, long length, CancellationToken cancellationToken)
    {
        using var hash = file.Checksum.Begin(length);
        await using var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            int read;
            while ((read = await input.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0) hash.AppendData(buffer, 0, read);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return FileChecksum.HexOf(hash);
    }

    /// <summary>Broken or stalled connections and server errors are worth another try; refusals and the caller's cancellation are not.</summary>
    private static bool IsTransient(Exception e, CancellationToken cancellationToken) => e switch
    {
        HubException => false,
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        HttpRequestException or IOException => true,
        _ => false,
    };
}
