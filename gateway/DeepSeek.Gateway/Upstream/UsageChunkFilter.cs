namespace DeepSeek.Gateway.Upstream;

/// <summary>
/// A stream whose usage the gateway asked for on the client's behalf (<c>stream_options.include_usage</c>, so
/// that its tokens count against the key and reach the audit line): every event goes through as soon as it
/// is complete, but the usage chunk, whose counts are kept instead. Events end at their blank line; a
/// partial one waits for its rest (the runtime writes and flushes whole events, so nothing waits long).
/// </summary>
internal sealed class UsageChunkFilter(Stream inner) : WriteOnlyStream
{
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private readonly MemoryStream _pending = new();

    /// <summary>The counts of the usage chunk held back, once it passed.</summary>
    public TokenUsage? Usage { get; private set; }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        _pending.Write(buffer.Span);
        await ForwardCompleteEventsAsync(cancellationToken);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    /// <summary>The stream ended: what is left of a last event without its blank line goes through as it is.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        if (_pending.Length == 0) return;
        await inner.WriteAsync(_pending.GetBuffer().AsMemory(0, (int)_pending.Length), cancellationToken);
        _pending.SetLength(0);
        await inner.FlushAsync(cancellationToken);
    }

    private async Task ForwardCompleteEventsAsync(CancellationToken cancellationToken)
    {
        var data = _pending.GetBuffer().AsMemory(0, (int)_pending.Length);
        var start = 0;
        while (data.Span[start..].IndexOf(EventEnd) is var end and >= 0)
        {
            var item = data.Slice(start, end + EventEnd.Length);
            if (UsageReader.FromUsageChunk(item.Span) is { } usage) Usage = usage;
            else await inner.WriteAsync(item, cancellationToken);
            start += item.Length;
        }
        if (start == 0) return;
        var rest = data[start..].ToArray();
        _pending.SetLength(0);
        _pending.Write(rest);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _pending.Dispose();
        base.Dispose(disposing);
    }
}
