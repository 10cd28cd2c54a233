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
    public void Default_gateway_image_is_the_release_build()
    {
        var gateway = GatewayImage(Manifests.Render());

        Assert.Contains(gateway, BuiltImages("--release"));
        Assert.EndsWith($":{AppVersion()}", gateway, StringComparison.Ordinal);
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
    public void Default_cpu_runtime_image_is_the_release_cpu_build_and_the_operators_own_default()
    {
        var cpu = CpuRuntimeImage(Manifests.Render());

        Assert.Contains(cpu, BuiltImages("--release"));
        Assert.Equal(RunCommand.DefaultCpuRuntimeImage, cpu);
    }

    [Fact]
    public void Repository_and_tag_values_select_the_images_built_for_another_registry()
    {
        var built = BuiltImages("--registry", "registry.example.com/platform", "--version", "1.2.3", "--cuda");
        var manifests = Manifests.Render(sets:
        [
            "image.repository=registry.example.com/platform/deepseek-operator", "image.tag=1.2.3",
            "gateway.image.repository=registry.example.com/platform/deepseek-gateway", "gateway.image.tag=1.2.3",
            "runtimeDefaults.image.repository=registry.example.com/platform/deepseek-runtime", "runtimeDefaults.image.tag=1.2.3",
        ]);

        Assert.Contains(OperatorImage(manifests), built);
        Assert.Contains(GatewayImage(manifests), built);
        Assert.Contains(RuntimeImage(manifests), built);
        Assert.Contains(CpuRuntimeImage(manifests), built);
    }

    /// <summary>
    /// The install commands README.md and docs/deployment.md give while no registry publishes the images:
    /// <c>R=...</c>, <c>build-images.sh ... --push</c>, then <c>helm install ... --set ...</c>. The values set
    /// select what that build pushes.
    /// </summary>
    [Theory]
    [InlineData("README.md")]
    [InlineData("docs/deployment.md")]
    public void Install_commands_of_the_docs_point_the_chart_at_the_images_they_push(string document)
    {
        var lines = File.ReadAllLines(Repository.PathOf(document.Split('/')));
        var assignment = Array.FindIndex(lines, l => l.StartsWith("R=", StringComparison.Ordinal));
        Assert.True(assignment >= 0, $"{document} has no R=<registry> line");
        var registry = lines[assignment]["R=".Length..].Split(' ')[0];
        string Expand(string word) => word.Replace("\"", "", StringComparison.Ordinal).Replace("$R", registry, StringComparison.Ordinal);

        var build = lines.Skip(assignment).First(l => l.StartsWith("bash scripts/build-images.sh ", StringComparison.Ordinal));
        var arguments = build.Split('#')[0].Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(2).Select(Expand).ToList();
        Assert.Contains("--push", arguments);
        var built = BuiltImages([.. arguments.Where(a => a != "--push")]);

        var install = Array.FindIndex(lines, assignment, l => l.StartsWith("helm install ", StringComparison.Ordinal));
        var sets = lines.Skip(install + 1).TakeWhile(l => l.TrimStart().StartsWith("--set ", StringComparison.Ordinal))
            .Select(l => Expand(l.Trim().TrimEnd('\\').Trim()["--set ".Length..])).ToList();
        Assert.Equal(3, sets.Count);
        var manifests = Manifests.Render(sets: sets);

        Assert.Contains(OperatorImage(manifests), built);
        Assert.Contains(GatewayImage(manifests), built);
        Assert.Contains(RuntimeImage(manifests), built);
        Assert.StartsWith($"{registry}/", OperatorImage(manifests), StringComparison.Ordinal);
    }

    [Fact]
    public void Local_builds_are_tagged_dev()
    {
        Assert.Equal(["localhost/deepseek-operator:dev", "localhost/deepseek-gateway:dev", "localhost/deepseek-runtime:dev-cpu"], BuiltImages());
    }

    private static string OperatorImage(IReadOnlyList<Manifest> manifests) =>
        Manifests.Scalar(Manifests.Sequence(manifests.Of("operator").Single("Deployment").Root, "spec", "template", "spec", "containers").Single(), "image")!;

    private static string GatewayImage(IReadOnlyList<Manifest> manifests) =>
        Manifests.Scalar(Manifests.Sequence(manifests.Of("gateway").Single("Deployment").Root, "spec", "template", "spec", "containers").Single(), "image")!;

    private static string RuntimeImage(IReadOnlyList<Manifest> manifests) => OperatorArgument(manifests, "--runtime-image=");

    private static string CpuRuntimeImage(IReadOnlyList<Manifest> manifests) => OperatorArgument(manifests, "--cpu-runtime-image=");

    private static string OperatorArgument(IReadOnlyList<Manifest> manifests, string flag)
    {
        var container = Manifests.Sequence(manifests.Of("operator").Single("Deployment").Root, "spec", "template", "spec", "containers").Single();
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
