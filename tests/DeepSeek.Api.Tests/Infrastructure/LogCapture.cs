using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Api.Tests.Infrastructure;

/// <summary>Every log entry of a host from when it is added (<c>ILoggerFactory.AddProvider</c>).</summary>
public sealed class LogCapture : ILoggerProvider
{
    public ConcurrentQueue<(string Category, LogLevel Level, string Message, Exception? Exception)> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose() { }

    public override string ToString() => string.Join("\n", Entries.Select(e => $"{e.Level} {e.Category}: {e.Message}{(e.Exception is null ? "" : $" [{e.Exception.GetType().Name}]")}"));

    private sealed class Logger(LogCapture owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Entries.Enqueue((category, logLevel, formatter(state, exception), exception));
    }
}
