using System.Diagnostics;
using DeepSeek.Chart.Tests.Infrastructure;
using DeepSeek.Operator.Cli;

namespace DeepSeek.Chart.Tests.Images;

/// <summary>
/// The chart installs what the release process builds: its default image references are the ones
/// <c>scripts/build-images.sh --release</c> produces (tag = the chart's appVersion), and the values
/// docs/deployment.md tells users to set for their own registry select what the script builds there.
/// </summary>
public sealed class ReleaseImageTests
{
    [Fact]
    public void Default_operator_image_is_the_release_build()
    {
        var built = BuiltImages("--release");

        Assert.Contains(OperatorImage(Manifests.Render()), built);
        Assert.EndsWith($":{AppVersion()}", OperatorImage(Manifests.Render()), StringComparison.Ordinal);
    }

    [Fact]
    public void Default_runtime_image_is_the_release_cuda_build_and_the_operators_own_default()
    {
        var built = BuiltImages("--release", "--cuda");
        var runtime = RuntimeImage(Manifests.Render());

        Assert.Contains(runtime, built);
        Assert.DoesNotContain(runtime, BuiltImages("--release"));
        Assert.Equal(RunCommand.DefaultRuntimeImage, runtime);
    }

    [Fact]
    public void Repository_and_tag_values_select_the_images_built_for_another_registry()
    {
        var built = BuiltImages("--registry", "registry.example.com/platform", "--version", "1.2.3", "--cuda");
        var manifests = Manifests.Render(sets:
        [
            "image.repository=registry.example.com/platform/deepseek-operator", "image.tag=1.2.3",
            "runtimeDefaults.image.repository=registry.example.com/platform/deepseek-runtime", "runtimeDefaults.image.tag=1.2.3",
        ]);

        Assert.Contains(OperatorImage(manifests), built);
        Assert.Contains(RuntimeImage(manifests), built);
    }

    [Fact]
    public void Local_builds_are_tagged_dev()
    {
        Assert.Equal(["localhost/deepseek-operator:dev", "localhost/deepseek-runtime:dev-cpu"], BuiltImages());
    }

    private static string OperatorImage(IReadOnlyList<Manifest> manifests) =>
        Manifests.Scalar(Manifests.Sequence(manifests.Single("Deployment").Root, "spec", "template", "spec", "containers").Single(), "image")!;

    private static string RuntimeImage(IReadOnlyList<Manifest> manifests)
    {
        var container = Manifests.Sequence(manifests.Single("Deployment").Root, "spec", "template", "spec", "containers").Single();
        const string flag = "--runtime-image=";
        return Assert.Single(Manifests.Strings(container, "args"), a => a.StartsWith(flag, StringComparison.Ordinal))[flag.Length..];
    }

    private static string AppVersion() =>
        File.ReadAllLines(Path.Combine(Repository.ChartDirectory, "Chart.yaml"))
            .Single(l => l.StartsWith("appVersion:", StringComparison.Ordinal))["appVersion:".Length..].Trim().Trim('"');

    /// <summary>The references <c>scripts/build-images.sh ARGS --list</c> says it builds.</summary>
    private static List<string> BuiltImages(params string[] arguments)
    {
        var start = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Repository.Root,
        };
        foreach (var argument in new[] { Repository.PathOf("scripts", "build-images.sh") }.Concat(arguments).Append("--list"))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("bash did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(1)), "build-images.sh --list did not finish within a minute");
        Assert.True(process.ExitCode == 0, $"build-images.sh {string.Join(' ', arguments)} --list exited {process.ExitCode}: {error.Result}");
        return [.. output.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
    }
}
