using System.Diagnostics;
using System.Text;

namespace DeepSeek.Gateway.Tests.Infrastructure;

/// <summary>
/// <c>deepseek-runtime serve</c> from the runtime's build output on loopback ports, serving the embedded
/// tiny model (tests/DeepSeek.Api.Tests starts it the same way); ready when returned, killed by its id when disposed.
/// </summary>
public sealed class RuntimeProcess : IAsyncDisposable
{
    public const string TinyModel = "deepseek-v3-tiny";

    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private RuntimeProcess(Process process, int httpPort)
    {
        _process = process;
        Url = $"http://127.0.0.1:{httpPort}";
    }

    public string Url { get; }

    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    public static async Task<RuntimeProcess> StartAsync(params string[] extraArgs)
    {
        var httpPort = FreePort.Next();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { Repo.RuntimeDll, "serve", "--host", "127.0.0.1", "--http-port", $"{httpPort}", "--grpc-port", $"{FreePort.Next()}" }.Concat(extraArgs))
            start.ArgumentList.Add(arg);
        // Flags decide, not the environment of whoever runs the tests.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("DEEPSEEK_", StringComparison.Ordinal)).ToList()) start.Environment.Remove(name);
        var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start dotnet.");
        var runtime = new RuntimeProcess(process, httpPort);
        process.OutputDataReceived += (_, e) => runtime.Append(e.Data);
        process.ErrorDataReceived += (_, e) => runtime.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient();
            await Eventually.HoldsAsync(async () =>
            {
                if (process.HasExited) throw new InvalidOperationException($"serve exited with {process.ExitCode}:\n{runtime.Log}");
                using var ready = await http.GetAsync(new Uri(runtime.Url + "/ready"));
                return ready.IsSuccessStatusCode;
            }, TimeSpan.FromSeconds(90), $"the runtime on {runtime.Url} to be ready");
            return runtime;
        }
        catch
        {
            await runtime.DisposeAsync();
            throw;
        }
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log) _log.AppendLine(line);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
