using System.Diagnostics;
using System.Net;
using System.Text;

namespace DeepSeek.Images.Tests.Infrastructure;

/// <summary>
/// A Distribution registry (scripts/setup/registry.sh puts it in .tools/registry) on a free loopback port,
/// plain HTTP, with its own config file and storage in a temporary folder; stopped by its process id and
/// its folder removed when disposed.
/// </summary>
public sealed class LocalRegistry : IAsyncDisposable
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(30);

    private readonly Process process;
    private readonly string directory;
    private readonly StringBuilder log;

    private LocalRegistry(Process process, string directory, StringBuilder log, int port)
    {
        this.process = process;
        this.directory = directory;
        this.log = log;
        Address = $"127.0.0.1:{port}";
        Http = new HttpClient { BaseAddress = new Uri($"http://{Address}"), Timeout = TimeSpan.FromMinutes(1) };
    }

    /// <summary>host:port, the first component of the image references pushed here.</summary>
    public string Address { get; }

    public HttpClient Http { get; }

    /// <summary>What the registry printed so far (for failure messages).</summary>
    public string Log { get { lock (log) return log.ToString(); } }

    /// <summary>The binary: .tools/registry/registry, else docker-registry on PATH.</summary>
    public static string Binary =>
        File.Exists(Repository.PathOf(".tools", "registry", "registry")) ? Repository.PathOf(".tools", "registry", "registry") : "docker-registry";

    /// <param name="readOnly">Serve what it holds but refuse every upload (the registry's read-only maintenance mode).</param>
    public static async Task<LocalRegistry> StartAsync(bool readOnly = false)
    {
        var port = FreePort.Next();
        var directory = Directory.CreateTempSubdirectory("deepseek-registry-").FullName;
        var config = Path.Combine(directory, "config.yml");
        await File.WriteAllTextAsync(config, $"""
            version: 0.1
            log:
              level: warn
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: {Path.Combine(directory, "storage")}
              maintenance:
                uploadpurging:
                  enabled: false
                readonly:
                  enabled: {(readOnly ? "true" : "false")}
            http:
              addr: 127.0.0.1:{port}
            """);

        var start = new ProcessStartInfo(Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = directory,
        };
        start.ArgumentList.Add("serve");
        start.ArgumentList.Add(config);
        var log = new StringBuilder();
        var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {Binary}.");
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var registry = new LocalRegistry(process, directory, log, port);
        try
        {
            // Ready once the API root answers 200 (the registry binds before it serves).
            await Eventually.HoldsAsync(async () =>
            {
                if (process.HasExited) Assert.Fail($"{Binary} exited {process.ExitCode}:\n{registry.Log}");
                try
                {
                    using var response = await registry.Http.GetAsync(new Uri("/v2/", UriKind.Relative));
                    return response.StatusCode == HttpStatusCode.OK;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }, ReadyTimeout, $"the registry on {registry.Address} to answer /v2/");
            return registry;
        }
        catch
        {
            await registry.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(deadline.Token);
        }
        process.Dispose();
        Directory.Delete(directory, recursive: true);
    }
}
