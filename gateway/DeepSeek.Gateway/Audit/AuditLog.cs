using System.Text.Json;
using System.Threading.Channels;
using DeepSeek.Gateway.Api;

namespace DeepSeek.Gateway.Audit;

/// <summary>
/// Appends one JSON line per request to the configured path (<c>/dev/stdout</c> for the container log).
/// Requests only enqueue; one writer drains the queue and flushes after each batch, so a slow disk
/// never holds a request and lines never interleave.
/// </summary>
internal sealed partial class AuditLog(string? path, ILogger<AuditLog> logger) : BackgroundService
{
    private readonly Channel<AuditEntry> _queue = Channel.CreateUnbounded<AuditEntry>(new UnboundedChannelOptions { SingleReader = true });

    public void Write(AuditEntry entry)
    {
        if (path is not null) _queue.Writer.TryWrite(entry);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (path is null) return;
        await using var stream = path == "/dev/stdout"
            ? Console.OpenStandardOutput()
            : new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
        var newline = "\n"u8.ToArray();
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken))
            {
                while (_queue.Reader.TryRead(out var entry))
                {
                    await JsonSerializer.SerializeAsync(stream, entry, GatewayJsonContext.Default.AuditEntry, CancellationToken.None);
                    await stream.WriteAsync(newline, CancellationToken.None);
                }
                await stream.FlushAsync(CancellationToken.None);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: what was queued is written below.
        }
        catch (IOException e)
        {
            LogAuditFailed(logger, path, e.Message);
            return;
        }
        while (_queue.Reader.TryRead(out var left))
        {
            await JsonSerializer.SerializeAsync(stream, left, GatewayJsonContext.Default.AuditEntry, CancellationToken.None);
            await stream.WriteAsync(newline, CancellationToken.None);
        }
        await stream.FlushAsync(CancellationToken.None);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The audit log {Path} failed and stops: {Reason}")]
    private static partial void LogAuditFailed(ILogger logger, string path, string reason);
}
