using System.Diagnostics;
using System.Text;

namespace DeepSeek.Api.Tests.Infrastructure;

/// <summary>
/// <c>deepseek-runtime serve</c> from the runtime's build output as a child process on loopback ports,
/// serving the embedded tiny model; ready when started, killed by its id when disposed.
/// </summary>
public sealed class ServeProcess : IAsyncDisposable
{
    public const string ModelName = "deepseek-v3-tiny";

    private static readonly TimeSpan ReadyDeadline = DeepSeek.Testing.TestTime.Budget(TimeSpan.FromSeconds(120));

    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private ServeProcess(Process process, string host, int httpPort, int grpcPort)
    {
        _process = process;
        Host = host;
        HttpPort = httpPort;
        GrpcPort = grpcPort;
        // Generous: a loaded CI machine runs the tiny model many times slower; tests wait for conditions, not for time.
        Http = new HttpClient { BaseAddress = new Uri(HttpUrl), Timeout = TimeSpan.FromSeconds(600) };
    }

    /// <summary>The loopback address it listens on (127.0.0.0/8: tests of several processes give each its own).</summary>
    public string Host { get; }
    public int HttpPort { get; }
    public int GrpcPort { get; }
    public HttpClient Http { get; }
    public string HttpUrl => $"http://{Host}:{HttpPort}";
    public string GrpcAddress => $"{Host}:{GrpcPort}";
    public int ProcessId => _process.Id;

    /// <summary>What the server printed so far (for failure messages).</summary>
    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    /// <summary>The runtime's own build output, in the configuration and framework these tests were built with.</summary>
    public static string RuntimeDll
    {
        get
        {
            var framework = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            var configuration = framework.Parent!.Name;
            var dll = Path.Combine(ExternalTool.RepoRoot, "runtime", "DeepSeek.Runtime", "bin", configuration, framework.Name, "deepseek-runtime.dll");
            return File.Exists(dll) ? dll : throw new InvalidOperationException($"{dll} is missing; build runtime/DeepSeek.Runtime in {configuration} first.");
        }
    }

    public static Task<ServeProcess> StartAsync(params string[] extraArgs) => StartOnAsync("127.0.0.1", extraArgs);

    /// <summary>
    /// <c>serve</c> on <paramref name="host"/> (a loopback address) with free ports, once <c>/ready</c> answers 200.
    /// A port found free can be taken by another process before serve binds it; serve then exits naming
    /// the address in use, and it is started again on other ports (up to three times).
    /// </summary>
    public static async Task<ServeProcess> StartOnAsync(string host, params string[] extraArgs)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await StartOnceAsync(host, extraArgs);
            }
            catch (InvalidOperationException e) when (attempt < 3 && e.Message.Contains("address already in use", StringComparison.Ordinal))
            {
                // Lost the race for a port: new ports.
            }
        }
    }

    private static async Task<ServeProcess> StartOnceAsync(string host, string[] extraArgs)
    {
        var httpPort = FreePort.Next();
        var grpcPort = FreePort.Next();
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { RuntimeDll, "serve", "--host", host, "--http-port", $"{httpPort}", "--grpc-port", $"{grpcPort}" }.Concat(extraArgs))
            start.ArgumentList.Add(arg);
        // Flags decide, not the environment of whoever runs the tests.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("DEEPSEEK_", StringComparison.Ordinal)).ToList()) start.Environment.Remove(name);
        var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start dotnet.");
        var server = new ServeProcess(process, host, httpPort, grpcPort);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await server.WaitReadyAsync();
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log) _log.AppendLine(line);
    }

    private async Task WaitReadyAsync()
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < ReadyDeadline)
        {
            if (_process.HasExited)
            {
                _process.WaitForExit(); // the redirected output read to its end, so the log holds why
                throw new InvalidOperationException($"serve exited with {_process.ExitCode} before it was ready:\n{Log}");
            }
            try
            {
                using var ready = await Http.GetAsync(new Uri("/ready", UriKind.Relative));
                if (ready.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"serve was not ready within {ReadyDeadline.TotalSeconds} s:\n{Log}");
    }

    /// <summary>What Kubernetes sends on pod deletion: SIGTERM, by process id.</summary>
    public async Task SendSigtermAsync()
    {
        var (exitCode, _, stderr) = await ExternalTool.RunAsync(new ProcessStartInfo("kill", ["-s", "TERM", $"{_process.Id}"]), null, TimeSpan.FromSeconds(10));
        if (exitCode != 0) throw new InvalidOperationException($"kill -s TERM {_process.Id} failed: {stderr}");
    }

    /// <summary>The exit code once the process ends, or a timeout naming the log.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        timeout = DeepSeek.Testing.TestTime.Budget(timeout);
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"serve did not exit within {timeout.TotalSeconds} s:\n{Log}");
        }
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
