using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Cluster;

namespace DeepSeek.Operator.Tests.Cluster;

public sealed class ClusterFeaturesTests
{
    private static DeepSeekModelSpec Spec(bool image) => new()
    {
        Model = new ModelSpec { Source = image ? new ModelSource { Image = new ImageModelSource { Reference = "r/m:1" } } : new ModelSource { Pvc = new PvcModelSource { ClaimName = "w" } } },
    };

    [Theory]
    [InlineData("1", "30", 1, 30)]
    [InlineData("1", "31+", 1, 31)]
    [InlineData("1", "", 1, 0)]
    public void The_version_is_read_from_major_and_minor_as_managed_clusters_write_them(string major, string minor, int expectedMajor, int expectedMinor) =>
        Assert.Equal(new Version(expectedMajor, expectedMinor), ClusterFeatures.FromVersion(major, minor).Kubernetes);

    [Theory]
    [InlineData(29, false, true)]
    [InlineData(30, false, false)]
    [InlineData(30, true, true)]
    [InlineData(31, true, false)]
    [InlineData(35, true, false)]
    public void Refuses_what_the_version_lacks(int minor, bool image, bool refused) =>
        Assert.Equal(refused, new ClusterFeatures(new Version(1, minor)).Refusal(Spec(image)) is not null);

    [Fact]
    public void A_refused_image_volume_on_a_gated_release_is_explained()
    {
        var why = new ClusterFeatures(new Version(1, 33)).ExplainRefusedWorkload(Spec(image: true),
            "Deployment.apps \"m\" is invalid: spec.template.spec.volumes[0]: Required value: must specify a volume type");
        Assert.Contains("ImageVolume feature gate", why, StringComparison.Ordinal);
        Assert.Null(new ClusterFeatures(new Version(1, 33)).ExplainRefusedWorkload(Spec(image: false), "volumes[0]: Required value"));
    }
}
