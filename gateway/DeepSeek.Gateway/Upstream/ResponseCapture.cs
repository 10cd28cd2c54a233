namespace DeepSeek.Gateway.Upstream;

/// <summary>
/// The client's response stream with a copy on the side: the whole body up to a limit (a JSON answer:
/// its usage, and the cache entry), or only the last bytes (a stream: its final usage chunk). Every
/// write and flush goes straight through, so streaming stays unbuffered.
/// </summary>
internal sealed class ResponseCapture(Stream inner, bool tailOnly, int limit) : WriteOnlyStream
{
    private readonly MemoryStream _copy = new();

    public long BytesWritten { get; private set; }

    /// <summary>False once the body outgrew <c>limit</c> in whole mode: the copy is then not the body.</summary>
    public bool Complete { get; private set; } = true;

    /// <summary>A copy of what was kept (a cache entry outlives the response).</summary>
    public byte[] Captured() => _copy.ToArray();

    /// <summary>What was kept, without a copy: valid until the next write (reading the usage).</summary>
    public ReadOnlySpan<byte> Kept => _copy.GetBuffer().AsSpan(0, (int)_copy.Length);

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await inner.WriteAsync(buffer, cancellationToken);
        Keep(buffer.Span);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count)
    {
        inner.Write(buffer, offset, count);
        Keep(buffer.AsSpan(offset, count));
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    private void Keep(ReadOnlySpan<byte> bytes)
    {
        BytesWritten += bytes.Length;
        if (tailOnly)
        {
            _copy.Write(bytes);
            if (_copy.Length > 2 * limit)
            {
                // Keep the last `limit` bytes only.
                var tail = _copy.GetBuffer().AsSpan((int)_copy.Length - limit, limit).ToArray();
                _copy.SetLength(0);
                _copy.Write(tail);
            }
        }
        else if (Complete)
        {
            if (_copy.Length + bytes.Length > limit)
            {
                Complete = false;
                _copy.SetLength(0);
            }
            else
            {
                _copy.Write(bytes);
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _copy.Dispose();
        base.Dispose(disposing);
    }
}
