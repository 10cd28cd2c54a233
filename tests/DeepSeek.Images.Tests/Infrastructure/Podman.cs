namespace DeepSeek.Images.Tests.Infrastructure;

/// <summary>The podman CLI (scripts/setup/containers.sh installs it and writes the containers.conf <see cref="Command"/> points it at).</summary>
public static class Podman
{
    /// <summary>How the chart runs the images: read-only root, the non-root user, no capabilities, no privilege escalation.</summary>
    public static readonly IReadOnlyList<string> AsTheChartRunsThem =
        ["--read-only", "--user", "65532:65532", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"];

    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    public static Task<CommandResult> RunAsync(params string[] arguments) => Command.RunAsync("podman", arguments, Timeout);
}
