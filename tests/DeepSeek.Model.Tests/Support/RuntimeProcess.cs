using System.Diagnostics;

namespace DeepSeek.Model.Tests.Support;

/// <summary>The runtime executable built next to the tests, run as a real process.</summary>
public static class RuntimeProcess
{
    /// <param name="environment">Variables to set for the process; a null value removes one it would inherit.</param>
    /// <param name="arguments">The verb and its flags.</param>
    public static (int ExitCode, string Stdout, string Stderr) Run(IReadOnlyDictionary<string, string?>? environment, params string[] arguments)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        }
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "deepseek-runtime.dll"));
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill();
            throw new TimeoutException("deepseek-runtime did not finish within 2 minutes.");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
