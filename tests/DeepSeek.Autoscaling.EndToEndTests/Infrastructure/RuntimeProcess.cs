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

    public static async Task<RuntimeProcess> StartAsync(IPAddress address, int httpPort, int grpcPort, TimeSpan readyWithin)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(RuntimeDll());
        foreach (var a in new[] { "serve", "--host", address.ToString(), "--http-port", $"{httpPort}", "--grpc-port", $"{grpcPort}", "--max-running-requests", "1", "--max-queued-requests", "64", "--drain-timeout", "60" })
            start.ArgumentList.Add(a);
        var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
        // Drain the pipes so the process never blocks on a full one.
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var runtime = new RuntimeProcess(process, address, httpPort, grpcPort);
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
        throw new TimeoutException($"deepseek-runtime serve on {address}:{httpPort} was not ready within {readyWithin}.");
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
