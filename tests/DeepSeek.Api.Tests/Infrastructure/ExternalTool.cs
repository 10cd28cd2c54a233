using System.Diagnostics;
using System.Text;

namespace DeepSeek.Api.Tests.Infrastructure;

/// <summary>Finds the real clients the setup scripts install, and runs them as child processes with a deadline.</summary>
public static class ExternalTool
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string ClientsDir => Path.Combine(RepoRoot, "tests", "clients");

    public static string ProtoPath => Path.Combine(RepoRoot, "runtime", "Protos", "inference.proto");

    /// <summary>
    /// An executable a setup script put under the repository's .tools/ (prometheus and promtool: .tools/prometheus),
    /// else one on PATH, or a failure naming the script that installs it.
    /// </summary>
    public static string Require(string name, string setupScript)
    {
        var found = new[] { Path.Combine(RepoRoot, ".tools", "prometheus") }
            .Concat((Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);
        return found ?? throw new InvalidOperationException($"'{name}' is not installed; run 'bash {setupScript}' (scripts/test.sh runs it first).");
    }

    public static void RequireNodeClients()
    {
        Require("node", "scripts/setup/node-clients.sh");
        foreach (var package in new[] { "openai", "@grpc/grpc-js", "@grpc/proto-loader" })
            if (!Directory.Exists(Path.Combine(ClientsDir, "node_modules", package)))
                throw new InvalidOperationException($"npm package {package} is missing in tests/clients; run 'bash scripts/setup/node-clients.sh'.");
    }

    /// <summary>Runs a script of tests/clients with node; returns stdout, or throws with stderr when it fails or overruns.</summary>
    public static async Task<string> RunNodeAsync(string script, IReadOnlyDictionary<string, string> environment, TimeSpan timeout)
    {
        RequireNodeClients();
        var start = new ProcessStartInfo(Require("node", "scripts/setup/node-clients.sh"), [Path.Combine(ClientsDir, script)])
        {
            WorkingDirectory = ClientsDir,
        };
        foreach (var (name, value) in environment) start.Environment[name] = value;
        var (exitCode, stdout, stderr) = await RunAsync(start, null, timeout);
        return exitCode == 0 ? stdout : throw new InvalidOperationException($"node {script} exited {exitCode}:\n{stderr}\n{stdout}");
    }

    /// <summary>Runs a process to its end (or kills it, by its id, at the deadline) and returns what it printed.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(ProcessStartInfo start, string? stdin, TimeSpan timeout)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.RedirectStandardInput = stdin is not null;
        start.UseShellExecute = false;
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {start.FileName}.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
        }
        timeout = DeepSeek.Testing.TestTime.Budget(timeout);
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"{start.FileName} ran past {timeout.TotalSeconds} s and was stopped. Output:\n{await stdout}\n{await stderr}");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DeepSeekOperator.sln"))) return dir.FullName;
        throw new InvalidOperationException("Could not find the repository root (DeepSeekOperator.sln) above the test binaries.");
    }
}
