using DeepSeek.Images.Tests.Infrastructure;

namespace DeepSeek.Images.Tests;

/// <summary>The gateway image, run as the chart runs it: the published executable, reading a configuration mounted read-only.</summary>
[Collection(ImagesCollection.Name)]
public sealed class GatewayImageTests(BuiltImages images)
{
    [Fact]
    public async Task The_image_runs_the_published_gateway_and_reads_its_configuration_as_the_chart_mounts_it()
    {
        var version = (await Podman.RunAsync(["run", "--rm", .. Podman.AsTheChartRunsThem, "--network", "none", images.Gateway, "--version"])).Succeeded();
        var onHost = (await Command.RunAsync(BuiltImages.PublishedGateway, ["--version"], TimeSpan.FromMinutes(1))).Succeeded();
        Assert.Equal(onHost.Output, version.Output);

        // Not CreateTempSubdirectory, whose folder only its creator may read: the image's user (65532) reads this one.
        var folder = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"deepseek-gateway-image-{Guid.NewGuid():N}"));
        try
        {
            // The chart's shape of file (cluster:), outside any cluster: read, then refused for want of a cluster.
            await File.WriteAllTextAsync(Path.Combine(folder.FullName, "gateway.yaml"), "listen: {host: 0.0.0.0, port: 8080}\ncluster: {models: {holdSeconds: 30}}\n");
            var cluster = await Podman.RunAsync(["run", "--rm", .. Podman.AsTheChartRunsThem, "--network", "none",
                "--volume", $"{folder.FullName}:/etc/deepseek-gateway:ro", images.Gateway, "--config", "/etc/deepseek-gateway/gateway.yaml"]);
            Assert.Equal(2, cluster.ExitCode);
            Assert.Contains("No Kubernetes configuration found", cluster.Error, StringComparison.Ordinal);

            await File.WriteAllTextAsync(Path.Combine(folder.FullName, "gateway.yaml"), "cluster: {models: {routing: random}}\n");
            var bad = await Podman.RunAsync(["run", "--rm", .. Podman.AsTheChartRunsThem, "--network", "none",
                "--volume", $"{folder.FullName}:/etc/deepseek-gateway:ro", images.Gateway, "--config", "/etc/deepseek-gateway/gateway.yaml"]);
            Assert.Equal(2, bad.ExitCode);
            Assert.Contains("cluster.models.routing", bad.Error, StringComparison.Ordinal);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
