using System.Diagnostics;
using System.Text;

namespace DeepSeek.Images.Tests.Infrastructure;

/// <summary>
/// Runs a program to completion with a deadline; a program past it is killed by its id. Every program
/// gets CONTAINERS_CONF and CONTAINERS_STORAGE_CONF pointing at the project's files (see <see cref="ContainersConf"/>).
/// </summary>
public static class Command
{
    /// <summary>
    /// The containers.conf scripts/setup/containers.sh writes under .tools/: podman, buildah and skopeo
    /// read it instead of the host's /etc/containers settings. A CONTAINERS_CONF set by the caller wins.
    /// </summary>
    public static string ContainersConf => Repository.PathOf(".tools", "containers", "containers.conf");

    /// <summary>Its storage.conf beside it: the project's own image store under .tools/containers/storage (CONTAINERS_STORAGE_CONF).</summary>
    public static string StorageConf => Repository.PathOf(".tools", "containers", "storage.conf");

    public static async Task<CommandResult> RunAsync(string program, IEnumerable<string> arguments, TimeSpan timeout, Action<IDictionary<string, string?>>? environment = null)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Repository.Root,
        };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        foreach (var (name, file) in new[] { ("CONTAINERS_CONF", ContainersConf), ("CONTAINERS_STORAGE_CONF", StorageConf) })
            if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(name)) && File.Exists(file))
                start.Environment[name] = file;
        environment?.Invoke(start.Environment);
        var line = $"{program} {string.Join(' ', start.ArgumentList)}";

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {line}.");
        var output = new StringBuilder();
        var error = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (error) error.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"`{line}` ran past {timeout.TotalSeconds} s and was stopped.\nstdout:\n{output}\nstderr:\n{error}");
        }

        // The parameterless wait returns once the redirected streams are drained.
        await process.WaitForExitAsync();
        lock (output) lock (error) return new CommandResult(line, process.ExitCode, output.ToString(), error.ToString());
    }
}
