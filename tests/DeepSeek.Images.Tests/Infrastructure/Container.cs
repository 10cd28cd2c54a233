using System.Globalization;

namespace DeepSeek.Images.Tests.Infrastructure;

/// <summary>
/// A detached container started as the chart runs it, its HTTP port published on loopback only;
/// removed by its id when disposed.
/// </summary>
public sealed class Container : IAsyncDisposable
{
    private Container(string id, int httpPort)
    {
        Id = id;
        HttpPort = httpPort;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = TimeSpan.FromMinutes(3) };
    }

    public string Id { get; }
    public int HttpPort { get; }
    public HttpClient Http { get; }

    /// <summary>
    /// Starts <paramref name="image"/> with <paramref name="arguments"/> (after its entrypoint). The host
    /// port and the container port are the same number, passed to the program by <paramref name="portArguments"/>.
    /// </summary>
    public static async Task<Container> StartAsync(string image, Func<int, IEnumerable<string>> portArguments, params string[] arguments)
    {
        var port = FreePort.Next();
        var run = await Podman.RunAsync(
            ["run", "--detach", .. Podman.AsTheChartRunsThem, "--publish", $"127.0.0.1:{port}:{port}", image, .. arguments, .. portArguments(port)]);
        run.Succeeded();
        return new Container(run.Output.Trim(), port);
    }

    public async Task<string> LogsAsync() => (await Podman.RunAsync("logs", Id)) is var logs ? logs.Output + logs.Error : "";

    public async Task SignalAsync(string signal) => (await Podman.RunAsync("kill", "--signal", signal, Id)).Succeeded();

    /// <summary>The exit code, once the container has stopped (podman wait, bounded).</summary>
    public async Task<int> WaitForExitAsync()
    {
        var wait = (await Podman.RunAsync("wait", Id)).Succeeded();
        return int.Parse(wait.Output.Trim(), CultureInfo.InvariantCulture);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Podman.RunAsync("rm", "--force", "--time", "10", Id);
    }
}
