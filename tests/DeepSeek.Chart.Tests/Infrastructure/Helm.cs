using System.Diagnostics;

namespace DeepSeek.Chart.Tests.Infrastructure;

/// <summary>Runs the Helm binary that <c>scripts/setup/helm.sh</c> installs into <c>.tools/helm/</c>.</summary>
public static class Helm
{
    public const string ReleaseName = "dso";
    public const string ReleaseNamespace = "deepseek-system";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public static string BinaryPath
    {
        get
        {
            var path = Repository.PathOf(".tools", "helm", "helm");
            return File.Exists(path)
                ? path
                : throw new InvalidOperationException(
                    $"Helm is not installed at {path}. Run `bash scripts/setup/helm.sh` (scripts/test.sh does it for you).");
        }
    }

    /// <summary><c>helm template</c> of the chart with the given values files (relative to the chart) and --set pairs.</summary>
    public static HelmResult Template(IEnumerable<string>? valuesFiles = null, IEnumerable<string>? sets = null) =>
        Run(["template", ReleaseName, Repository.ChartDirectory, "--namespace", ReleaseNamespace, .. ValueArguments(valuesFiles, sets)]);

    public static HelmResult Lint(IEnumerable<string>? valuesFiles = null, IEnumerable<string>? sets = null) =>
        Run(["lint", Repository.ChartDirectory, "--strict", "--namespace", ReleaseNamespace, .. ValueArguments(valuesFiles, sets)]);

    public static HelmResult Run(IReadOnlyList<string> arguments)
    {
        var start = new ProcessStartInfo(BinaryPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Repository.Root,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("helm did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"helm {string.Join(' ', arguments)} did not finish within {Timeout}.");
        }

        return new HelmResult(process.ExitCode, output.GetAwaiter().GetResult(), error.GetAwaiter().GetResult());
    }

    private static IEnumerable<string> ValueArguments(IEnumerable<string>? valuesFiles, IEnumerable<string>? sets)
    {
        foreach (var file in valuesFiles ?? [])
        {
            yield return "--values";
            yield return Path.Combine(Repository.ChartDirectory, file);
        }

        foreach (var set in sets ?? [])
        {
            yield return "--set";
            yield return set;
        }
    }
}
