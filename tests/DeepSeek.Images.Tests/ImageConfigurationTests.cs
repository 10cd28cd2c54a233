using System.Text.Json;
using DeepSeek.Images.Tests.Infrastructure;

namespace DeepSeek.Images.Tests;

/// <summary>What the images declare: user, entrypoint, annotations, reproducible timestamps, no shell, the OCI archives.</summary>
[Collection(ImagesCollection.Name)]
public sealed class ImageConfigurationTests(BuiltImages images)
{
    public static TheoryData<string, string> Entrypoints => new()
    {
        { "operator", "/app/deepseek-operator" },
        { "runtime", "/app/deepseek-runtime" },
    };

    [Theory]
    [MemberData(nameof(Entrypoints))]
    public async Task Runs_its_executable_as_65532_with_epoch_timestamps_and_oci_annotations(string which, string entrypoint)
    {
        var image = Image(which);
        using var inspect = JsonDocument.Parse((await Podman.RunAsync("image", "inspect", image)).Succeeded().Output);
        var root = inspect.RootElement[0];
        var config = root.GetProperty("Config");

        Assert.Equal("65532:65532", config.GetProperty("User").GetString());
        Assert.Equal([entrypoint], config.GetProperty("Entrypoint").EnumerateArray().Select(e => e.GetString()));
        // --timestamp 0: nothing in the image records when it was built, so equal inputs give equal images.
        Assert.StartsWith("1970-01-01T00:00:00", root.GetProperty("Created").GetString(), StringComparison.Ordinal);

        var revision = (await Command.RunAsync("git", ["rev-parse", "HEAD"], TimeSpan.FromMinutes(1))).Succeeded().Output.Trim();
        var labels = config.GetProperty("Labels");
        Assert.Equal("https://github.com/deepseek-operator/deepseek-operator", labels.GetProperty("org.opencontainers.image.source").GetString());
        Assert.StartsWith(revision, labels.GetProperty("org.opencontainers.image.revision").GetString(), StringComparison.Ordinal);
        Assert.Equal(image[(image.LastIndexOf(':') + 1)..].Replace("-cpu", "", StringComparison.Ordinal), labels.GetProperty("org.opencontainers.image.version").GetString());

        var annotations = root.GetProperty("Annotations");
        Assert.Equal(labels.GetProperty("org.opencontainers.image.revision").GetString(), annotations.GetProperty("org.opencontainers.image.revision").GetString());
    }

    [Theory]
    [MemberData(nameof(Entrypoints))]
    public async Task Has_no_shell(string which, string entrypoint)
    {
        _ = entrypoint;
        var cidFile = Path.Combine(Path.GetTempPath(), $"deepseek-images-{Guid.NewGuid():N}.cid");
        try
        {
            var shell = await Podman.RunAsync(["run", "--cidfile", cidFile, .. Podman.AsTheChartRunsThem, "--network", "none", "--entrypoint", "/bin/sh", Image(which), "-c", "true"]);
            Assert.NotEqual(0, shell.ExitCode);
            Assert.Contains("/bin/sh", shell.Error, StringComparison.Ordinal);
        }
        finally
        {
            if (File.Exists(cidFile))
            {
                await Podman.RunAsync("rm", "--force", (await File.ReadAllTextAsync(cidFile)).Trim());
                File.Delete(cidFile);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Entrypoints))]
    public async Task Oci_archive_holds_the_image_in_storage(string which, string entrypoint)
    {
        _ = entrypoint;
        var image = Image(which);
        var archive = BuiltImages.ArchiveOf(image);
        Assert.True(File.Exists(archive), $"{archive} is missing");

        var id = (await Podman.RunAsync("image", "inspect", "--format", "{{.Id}}", image)).Succeeded().Output.Trim();
        using var manifest = JsonDocument.Parse((await Command.RunAsync("skopeo", ["inspect", "--raw", $"oci-archive:{archive}"], TimeSpan.FromMinutes(3))).Succeeded().Output);
        // The image ID is the digest of its configuration, which the archive's manifest names.
        Assert.Equal($"sha256:{id}", manifest.RootElement.GetProperty("config").GetProperty("digest").GetString());
    }

    private string Image(string which) => which == "operator" ? images.Operator : images.RuntimeCpu;
}
