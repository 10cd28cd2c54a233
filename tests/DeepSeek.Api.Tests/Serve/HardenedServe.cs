using DeepSeek.Api.Tests.Infrastructure;

namespace DeepSeek.Api.Tests.Serve;

/// <summary>
/// One <c>serve</c> process as a locked-down deployment runs it: an API key from a file, a small
/// queue (<c>--max-queued-requests 2 --max-running-requests 1</c>), a 64 KiB body limit and one intra-op thread.
/// </summary>
public sealed class HardenedServe : IAsyncLifetime
{
    public const string Key = "hardened-key-7f3a9c";
    public const int MaxRequestBytes = 64 * 1024;

    private readonly string _keyFile = Path.Combine(Path.GetTempPath(), $"deepseek-api-key-{Guid.NewGuid():N}");

    public ServeProcess Server { get; private set; } = null!;

    public WireClient Wire { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await File.WriteAllTextAsync(_keyFile, Key + "\n");
        Server = await ServeProcess.StartAsync("--api-key-file", _keyFile, "--max-queued-requests", "2", "--max-running-requests", "1",
            "--max-request-bytes", $"{MaxRequestBytes}", "--threads", "1");
        Wire = new WireClient(Server.HttpPort, Server.GrpcPort);
    }

    public async Task DisposeAsync()
    {
        Wire.Dispose();
        await Server.DisposeAsync();
        File.Delete(_keyFile);
    }
}
