namespace DeepSeek.Images.Tests.Infrastructure;

/// <summary>scripts/build-images.sh with arguments, for the calls that build nothing (--list, --push-only, refused pushes).</summary>
public static class BuildImages
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    public static Task<CommandResult> RunAsync(params string[] arguments) =>
        Command.RunAsync("bash", ["scripts/build-images.sh", .. arguments], TestTime.Budget(Timeout));

    /// <summary>The references the script builds (and pushes) with these arguments.</summary>
    public static async Task<List<string>> ListAsync(params string[] arguments) =>
        [.. (await RunAsync([.. arguments, "--list"])).Succeeded().Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
}
