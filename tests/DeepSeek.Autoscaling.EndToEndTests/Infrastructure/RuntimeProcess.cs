using System.Diagnostics;
using System.Net;

namespace DeepSeek.Autoscaling.EndToEndTests.Infrastructure;

/// <summary>
/// A real <c>deepseek-runtime serve</c> process (the embedded tiny model on CPU) on its own
/// loopback address, standing in for one pod. Stopped by its process id: SIGTERM (the runtime
/// drains), then killed if it outlives the bound.
/// </summary>
public sealed class RuntimeProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly Queue<string> log = new();

    private RuntimeProcess(Process process, IPAddress address, int httpPort, int grpcPort)
    {
        this.process = process;
        Address = address;
        HttpPort = httpPort;
        GrpcPort = grpcPort;
    }

    public IPAddress Address { get; }
    public int HttpPort { get; }
    public int GrpcPort { get; }
    public Uri BaseUri => new($"http://{Address}:{HttpPort}/");
    public bool Exited => process.HasExited;

    /// <summary>The last lines the process printed (for failure messages).</summary>
    public string LogTail
    {
        get { lock (log) return string.Join('\n', log); }
    }

    public static async Task<RuntimeProcess> StartAsync(IPAddress address, int httpPort, int grpcPort, TimeSpan readyWithin)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(RuntimeDll());
        foreach (var a in new[] { "serve", "--host", address.ToString(), "--http-port", $"{httpPort}", "--grpc-port", $"{grpcPort}", "--max-running-requests", "1", "--max-queued-requests", "64", "--drain-timeout", "90" })
            start.ArgumentList.Add(a);
        // Flags decide, not the environment of whoever runs the tests.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("DEEPSEEK_", StringComparison.Ordinal)).ToList()) start.Environment.Remove(name);
        var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
        var runtime = new RuntimeProcess(process, address, httpPort, grpcPort);
        // Read the pipes (so the process never blocks on a full one), keeping the tail.
        process.OutputDataReceived += (_, e) => runtime.Append(e.Data);
        process.ErrorDataReceived += (_, e) => runtime.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + readyWithin;
        while (DateTime.UtcNow < deadline && !process.HasExited)
        {
            try
            {
                using var ready = await http.GetAsync(new Uri(runtime.BaseUri, "ready"));
                if (ready.IsSuccessStatusCode) return runtime;
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            await Task.Delay(200);
        }
        await runtime.DisposeAsync();
        throw new TimeoutException($"deepseek-runtime serve on {address}:{httpPort} was not ready within {readyWithin}:\n{runtime.LogTail}");
    }

    /// <summary>Requests the engine holds (running + waiting), from its <c>/metrics</c> gauges.</summary>
    public async Task<double> InFlightAsync(HttpClient http)
    {
        ArgumentNullException.ThrowIfNull(http);
        var text = await http.GetStringAsync(new Uri(BaseUri, "metrics"));
        return text.Split('\n')
            .Where(line => line.StartsWith("deepseek_requests_running{", StringComparison.Ordinal) || line.StartsWith("deepseek_requests_waiting{", StringComparison.Ordinal))
            .Sum(line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (log)
        {
            log.Enqueue(line);
            while (log.Count > 40) log.Dequeue();
        }
    }

    /// <summary>SIGTERM and wait for the drain to finish and the process to exit.</summary>
    public async Task StopAsync(TimeSpan within)
    {
        if (process.HasExited) return;
        // SIGTERM, as the kubelet sends it (Process.Kill would be SIGKILL, no drain).
        using (var term = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            await term.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(within);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(20));
        process.Dispose();
    }

    /// <summary>The runtime's build output next to this test's (same configuration and framework).</summary>
    private static string RuntimeDll()
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var framework = output.Name;
        var configuration = output.Parent!.Name;
        var root = output;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "DeepSeekOperator.sln"))) root = root.Parent;
        if (root is null) throw new InvalidOperationException("The repository root (DeepSeekOperator.sln) is not above the test output.");
        var dll = Path.Combine(root.FullName, "runtime", "DeepSeek.Runtime", "bin", configuration, framework, "deepseek-runtime.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"Build runtime/DeepSeek.Runtime ({configuration}) first.", dll);
    }
}
