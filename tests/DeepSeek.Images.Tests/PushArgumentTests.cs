using System.Diagnostics;
using DeepSeek.Images.Tests.Infrastructure;

namespace DeepSeek.Images.Tests;

/// <summary>
/// What <c>scripts/build-images.sh --push</c> refuses, and that it refuses it with one line before building
/// anything. Needs no built image, so it is outside the images collection and runs beside its build.
/// </summary>
public sealed class PushArgumentTests
{
    [Fact]
    public async Task An_unreachable_registry_fails_with_one_line_before_anything_is_built()
    {
        // A loopback port nothing listens on.
        var address = $"127.0.0.1:{FreePort.Next()}";
        var clock = Stopwatch.StartNew();

        var push = await BuildImages.RunAsync("--registry", $"{address}/deepseek", "--version", "unreachable", "--push");

        Assert.Equal(1, push.ExitCode);
        Assert.Equal($"error: registry {address} is unreachable (no answer from https://{address}/v2/ within 10 s); nothing was built or pushed",
            push.Error.Trim());
        Assert.Equal("", push.Output);
        Assert.True(clock.Elapsed < TestTime.Budget(TimeSpan.FromSeconds(30)), $"refusing took {clock.Elapsed}");
    }

    [Fact]
    public async Task Push_without_a_registry_is_refused_since_localhost_names_local_images_only()
    {
        var push = await BuildImages.RunAsync("--version", "no-registry", "--push");

        Assert.Equal(2, push.ExitCode);
        var line = Assert.Single(push.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: --push needs --registry", line, StringComparison.Ordinal);
        Assert.Equal("", push.Output);
    }

    [Fact]
    public async Task Push_only_of_images_never_built_names_the_missing_one()
    {
        await using var registry = await LocalRegistry.StartAsync();
        var prefix = $"{registry.Address}/deepseek";

        var push = await BuildImages.RunAsync("--registry", prefix, "--version", "never-built", "--push-only");

        Assert.Equal(1, push.ExitCode);
        Assert.Equal($"error: {prefix}/deepseek-operator:never-built is not in local storage; build it first (the same arguments without --push-only)", push.Error.Trim());
        Assert.Equal("", push.Output);
    }

    [Fact]
    public async Task Insecure_without_push_is_refused()
    {
        var build = await BuildImages.RunAsync("--insecure");

        Assert.Equal(2, build.ExitCode);
        Assert.Equal("error: --insecure only applies to --push or --push-only", build.Error.Trim());
    }
}
