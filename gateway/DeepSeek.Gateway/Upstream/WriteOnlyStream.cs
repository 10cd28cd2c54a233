namespace DeepSeek.Gateway.Upstream;

/// <summary>
/// A stream the forwarder writes the response through (<see cref="ResponseCapture"/>, <see cref="UsageChunkFilter"/>):
/// written to and flushed, never read, sought or sized.
/// </summary>
internal abstract class WriteOnlyStream : Stream
{
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
