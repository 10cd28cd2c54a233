using DeepSeek.Images.Tests.Infrastructure;

namespace DeepSeek.Images.Tests;

/// <summary>The operator image, run as the chart runs it, rendering a sample without a cluster.</summary>
[Collection(ImagesCollection.Name)]
public sealed class OperatorImageTests(BuiltImages images)
{
    [Theory]
    [InlineData("serving_v1alpha1_deepseekmodel_v2lite.yaml", "Deployment")]
    [InlineData("serving_v1alpha1_deepseekmodel_v3_expert_parallel.yaml", "StatefulSet")]
    public async Task Render_prints_the_objects_the_published_operator_prints(string sample, string workload)
    {
        var cidFile = Path.Combine(Path.GetTempPath(), $"deepseek-images-{Guid.NewGuid():N}.cid");
        try
        {
            var inImage = await Podman.RunAsync(
                ["run", "--cidfile", cidFile, .. Podman.AsTheChartRunsThem, "--network", "none",
                 "--volume", $"{Repository.PathOf("samples")}:/samples:ro", images.Operator, "render", "-f", $"/samples/{sample}"]);
            inImage.Succeeded();
            // The same binary outside the image, on this machine's libraries.
            var onHost = (await Command.RunAsync(BuiltImages.PublishedOperator, ["render", "-f", Repository.PathOf("samples", sample)], TimeSpan.FromMinutes(3))).Succeeded();

            Assert.Equal(onHost.Output, inImage.Output);
            Assert.Contains($"kind: {workload}", inImage.Output, StringComparison.Ordinal);
            Assert.Contains("kind: Service", inImage.Output, StringComparison.Ordinal);
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
}
