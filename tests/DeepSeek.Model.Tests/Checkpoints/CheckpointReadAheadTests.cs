using DeepSeek.Model.Checkpoints;
using static DeepSeek.Model.Checkpoints.CheckpointReadAhead;

namespace DeepSeek.Model.Tests.Checkpoints;

public sealed class CheckpointReadAheadTests : IDisposable
{
    private const int Chunk = 64 << 10;
    private const int FileBytes = 16 * Chunk;

    /// <summary>Generous: the machine running the tests may be busy; the conditions come long before.</summary>
    private static readonly TimeSpan Patience = DeepSeek.Testing.TestTime.Budget(TimeSpan.FromMinutes(2));

    private readonly string _dir = Directory.CreateTempSubdirectory("read-ahead-test-").FullName;
    private readonly string _file;

    public CheckpointReadAheadTests()
    {
        _file = Path.Combine(_dir, "shard.safetensors");
        File.WriteAllBytes(_file, new byte[FileBytes]);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The file as four tensors, the way a load asks for them.</summary>
    private FileRange[] Tensors() =>
        [new(_file, 0, 4 * Chunk), new(_file, 4 * Chunk, 4 * Chunk), new(_file, 8 * Chunk, 4 * Chunk), new(_file, 12 * Chunk, 4 * Chunk)];

    [Fact]
    public void Ranges_become_chunks_and_contiguous_ranges_share_them()
    {
        var paths = new List<string>();
        var chunks = Split([new("a", 0, 10), new("a", 10, 5), new("b", 0, 3), new("a", 100, 20)], 8, paths);
        Assert.Equal(["a", "b"], paths);
        Assert.Equal(
            [new(0, 0, 8, 8), new(0, 8, 7, 15), new(1, 0, 3, 18), new(0, 100, 8, 26), new(0, 108, 8, 34), new(0, 116, 4, 38)],
            chunks);
    }

    [Theory]
    [InlineData(100, 0, 100, true)]
    [InlineData(101, 0, 100, false)]
    [InlineData(150, 60, 100, true)]
    public void The_window_is_measured_from_what_the_engine_thread_copied(long streamEnd, long consumed, long window, bool within) =>
        Assert.Equal(within, WithinWindow(streamEnd, consumed, window));

    [Fact]
    public void Everything_within_the_window_is_read_and_the_readers_end()
    {
        using var readAhead = new CheckpointReadAhead(Tensors(), new Settings(2, FileBytes, Chunk));
        Assert.True(SpinWait.SpinUntil(() => readAhead.LiveReaders == 0, Patience), "the readers did not finish");
        Assert.Equal(FileBytes, readAhead.BytesRead);
        Assert.Null(readAhead.Failure);
    }

    [Fact]
    public void Readers_wait_at_the_window_until_the_engine_thread_moves_and_stop_on_dispose()
    {
        var readAhead = new CheckpointReadAhead(Tensors(), new Settings(2, 4 * Chunk, Chunk));
        try
        {
            Assert.True(SpinWait.SpinUntil(() => readAhead.BytesRead == 4 * Chunk, Patience), $"read {readAhead.BytesRead}");
            Assert.Equal(2, readAhead.LiveReaders);
            readAhead.Advance(4 * Chunk);
            Assert.True(SpinWait.SpinUntil(() => readAhead.BytesRead == 8 * Chunk, Patience), $"read {readAhead.BytesRead}");
            Assert.True(readAhead.BytesRead <= 8 * Chunk);
        }
        finally
        {
            readAhead.Dispose();
        }
        Assert.Equal(0, readAhead.LiveReaders);
        Assert.True(readAhead.BytesRead < FileBytes);
        readAhead.Dispose(); // twice is harmless
    }

    [Fact]
    public void What_the_engine_thread_already_copied_is_not_read_again()
    {
        using var readAhead = new CheckpointReadAhead(Tensors(), new Settings(2, Chunk, Chunk));
        readAhead.Advance(FileBytes);
        Assert.True(SpinWait.SpinUntil(() => readAhead.LiveReaders == 0, Patience), "the readers did not finish");
        // At most the first chunk, if a reader got to it before the engine thread did.
        Assert.True(readAhead.BytesRead <= Chunk, $"read {readAhead.BytesRead}");
    }

    [Fact]
    public void A_missing_file_fails_at_once_and_starts_no_reader() =>
        Assert.Throws<FileNotFoundException>(() => new CheckpointReadAhead([new(Path.Combine(_dir, "absent.safetensors"), 0, 10)]));
}
