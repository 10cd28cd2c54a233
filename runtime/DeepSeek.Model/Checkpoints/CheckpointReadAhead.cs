using Microsoft.Win32.SafeHandles;

namespace DeepSeek.Model.Checkpoints;

/// <summary>
/// Reads the byte ranges a load is about to copy, a bounded window ahead of it, on a few background
/// threads. The engine thread copies each tensor from the memory-mapped file; on a cold page cache
/// each of its page faults waits for the disk at a queue depth of one, and the device copy waits
/// behind it. These readers keep several large reads in flight instead, so the pages are in memory
/// when the engine thread reaches them and the copy overlaps the disk.
/// <para>
/// The readers touch only file bytes (read into scratch buffers and dropped: what stays is the page
/// cache); tensors stay on the engine thread. They never run more than the window ahead of what
/// <see cref="Advance"/> reported, skip what the engine thread has already passed, and are stopped
/// and joined by <see cref="Dispose"/>.
/// </para>
/// </summary>
public sealed class CheckpointReadAhead : IDisposable
{
    /// <summary>
    /// <paramref name="Readers"/> threads, each reading <paramref name="ChunkBytes"/> at a time, at most
    /// <paramref name="WindowBytes"/> ahead of the engine thread.
    /// </summary>
    public sealed record Settings(int Readers, long WindowBytes, int ChunkBytes)
    {
        /// <summary>
        /// Half the cores (up to 8) keep an NVMe queue busy without crowding the engine thread; a window
        /// of 1 GiB covers a few seconds of a disk and bounds the page cache run ahead of the copy.
        /// </summary>
        public static Settings Default { get; } = new(Math.Clamp(Environment.ProcessorCount / 2, 2, 8), 1L << 30, 8 << 20);
    }

    /// <summary>Bytes <paramref name="Offset"/> to <paramref name="Offset"/> + <paramref name="Length"/> of the file at <paramref name="Path"/>.</summary>
    public readonly record struct FileRange(string Path, long Offset, long Length);

    /// <summary>A piece of one read: <see cref="StreamEnd"/> counts the bytes of all ranges up to its end, in load order.</summary>
    internal readonly record struct Chunk(int File, long Offset, int Length, long StreamEnd);

    private readonly Chunk[] _chunks;
    private readonly SafeFileHandle[] _files;
    private readonly Thread[] _readers;
    private readonly long _window;
    private readonly int _chunkBytes;
    private readonly object _gate = new();
    private long _consumed;
    private bool _stopping;
    private bool _disposed;
    private int _next = -1;
    private long _bytesRead;
    private Exception? _failure;

    /// <param name="ranges">The bytes the engine thread will read, in the order it reads them.</param>
    /// <param name="settings">Readers, window and chunk size; <see cref="Settings.Default"/> when null.</param>
    public CheckpointReadAhead(IEnumerable<FileRange> ranges, Settings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        settings ??= Settings.Default;
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.Readers, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.ChunkBytes, 4096);
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.WindowBytes, settings.ChunkBytes);
        _window = settings.WindowBytes;
        _chunkBytes = settings.ChunkBytes;
        var paths = new List<string>();
        _chunks = Split(ranges, settings.ChunkBytes, paths);
        _files = new SafeFileHandle[paths.Count];
        try
        {
            // Sequential: the kernel reads ahead of each of these reads further than by default.
            for (var i = 0; i < paths.Count; i++)
                _files[i] = File.OpenHandle(paths[i], FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        }
        catch
        {
            foreach (var file in _files) file?.Dispose();
            throw;
        }
        _readers = new Thread[_chunks.Length == 0 ? 0 : Math.Min(settings.Readers, _chunks.Length)];
        for (var i = 0; i < _readers.Length; i++)
        {
            _readers[i] = new Thread(Read) { IsBackground = true, Name = $"checkpoint read-ahead {i}" };
            _readers[i].Start();
        }
    }

    /// <summary>Bytes the readers have read so far (what they skipped because the engine thread was there first is not counted).</summary>
    public long BytesRead => Interlocked.Read(ref _bytesRead);

    /// <summary>The error that stopped a reader, if one did: the load goes on without it, only slower.</summary>
    public Exception? Failure => Volatile.Read(ref _failure);

    /// <summary>Threads still reading: none once the ranges are read or after <see cref="Dispose"/>.</summary>
    internal int LiveReaders => _readers.Count(r => r.IsAlive);

    /// <summary>The engine thread has copied <paramref name="bytes"/> more of the ranges, in their order: the window moves on.</summary>
    public void Advance(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        lock (_gate)
        {
            _consumed += bytes;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Stops the readers and waits for them: each finishes at most the chunk it is reading.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _stopping = true;
            Monitor.PulseAll(_gate);
        }
        foreach (var reader in _readers) reader.Join();
        foreach (var file in _files) file.Dispose();
    }

    /// <summary>
    /// Whether a chunk ending at <paramref name="streamEnd"/> may be read yet: not past the window
    /// ahead of <paramref name="consumed"/>.
    /// </summary>
    internal static bool WithinWindow(long streamEnd, long consumed, long window) => streamEnd - consumed <= window;

    /// <summary>Ranges in order as chunks of at most <paramref name="chunkBytes"/>; ranges that continue one another in a file share chunks.</summary>
    internal static Chunk[] Split(IEnumerable<FileRange> ranges, int chunkBytes, List<string> paths)
    {
        var chunks = new List<Chunk>();
        var fileIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        long stream = 0;
        foreach (var range in ranges)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(range.Offset);
            ArgumentOutOfRangeException.ThrowIfNegative(range.Length);
            if (!fileIndex.TryGetValue(range.Path, out var file))
            {
                file = paths.Count;
                fileIndex[range.Path] = file;
                paths.Add(range.Path);
            }
            var offset = range.Offset;
            var left = range.Length;
            while (left > 0)
            {
                if (chunks.Count > 0 && chunks[^1] is var last && last.File == file && last.Offset + last.Length == offset && last.Length < chunkBytes)
                {
                    var grow = (int)Math.Min(left, chunkBytes - last.Length);
                    chunks[^1] = last with { Length = last.Length + grow, StreamEnd = last.StreamEnd + grow };
                    offset += grow;
                    left -= grow;
                    stream += grow;
                    continue;
                }
                var length = (int)Math.Min(left, chunkBytes);
                stream += length;
                chunks.Add(new Chunk(file, offset, length, stream));
                offset += length;
                left -= length;
            }
        }
        return [.. chunks];
    }

    private void Read()
    {
        var buffer = GC.AllocateUninitializedArray<byte>(_chunkBytes);
        try
        {
            while (true)
            {
                var index = Interlocked.Increment(ref _next);
                if (index >= _chunks.Length) return;
                var chunk = _chunks[index];
                lock (_gate)
                {
                    while (!_stopping && !WithinWindow(chunk.StreamEnd, _consumed, _window)) Monitor.Wait(_gate);
                    if (_stopping) return;
                    // The engine thread got there first (a warm cache): reading it now would only cost time.
                    if (chunk.StreamEnd <= _consumed) continue;
                }
                var done = 0;
                while (done < chunk.Length)
                {
                    var read = RandomAccess.Read(_files[chunk.File], buffer.AsSpan(0, chunk.Length - done), chunk.Offset + done);
                    if (read == 0) break; // the file is shorter than its header says; the engine thread reports that
                    done += read;
                }
                Interlocked.Add(ref _bytesRead, done);
            }
        }
        catch (Exception e)
        {
            // A reader's failure must not take the process down: the engine thread reads the same bytes itself.
            Interlocked.CompareExchange(ref _failure, e, null);
        }
    }
}
