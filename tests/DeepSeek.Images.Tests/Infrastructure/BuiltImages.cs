using System.Diagnostics;

namespace DeepSeek.Images.Tests.Infrastructure;

/// <summary>
/// Runs <c>scripts/build-images.sh</c> once for the whole test run: the images every test in the
/// <see cref="ImagesCollection"/> uses, in the default containers-storage.
/// </summary>
public sealed class BuiltImages : IAsyncLifetime
{
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(40);

    public string Operator { get; private set; } = "";
    public string Gateway { get; private set; } = "";
    public string RuntimeCpu { get; private set; } = "";
    public string BuildOutput { get; private set; } = "";
    public TimeSpan BuildTime { get; private set; }

    /// <summary>Where the script leaves the publish output it copied into the images.</summary>
    public static string PublishedOperator => Repository.PathOf("artifacts", "image-build", "deepseek-operator", "deepseek-operator");

    public static string PublishedGateway => Repository.PathOf("artifacts", "image-build", "deepseek-gateway", "deepseek-gateway");

    public static string ArchiveOf(string image) => Repository.PathOf("artifacts", "images", image[(image.LastIndexOf('/') + 1)..].Replace(':', '-') + ".oci.tar");

    public async Task InitializeAsync()
    {
        var names = (await Command.RunAsync("bash", ["scripts/build-images.sh", "--list"], TimeSpan.FromMinutes(1))).Succeeded()
            .Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Operator = Assert.Single(names, n => n.Contains("/deepseek-operator:", StringComparison.Ordinal));
        Gateway = Assert.Single(names, n => n.Contains("/deepseek-gateway:", StringComparison.Ordinal));
        RuntimeCpu = Assert.Single(names, n => n.Contains("/deepseek-runtime:", StringComparison.Ordinal));

        var clock = Stopwatch.StartNew();
        // The nested dotnet publish must not inherit the test host's MSBuild settings.
        var build = await Command.RunAsync("bash", ["scripts/build-images.sh"], BuildTimeout, environment =>
        {
            foreach (var name in environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)).ToList())
                environment.Remove(name);
        });
        BuildTime = clock.Elapsed;
        BuildOutput = build.Output + build.Error;
        build.Succeeded();
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

[CollectionDefinition(Name)]
public sealed class ImagesCollection : ICollectionFixture<BuiltImages>
{
    public const string Name = "images";
}
