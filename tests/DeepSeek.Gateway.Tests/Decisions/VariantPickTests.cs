using DeepSeek.Gateway.Routing;

namespace DeepSeek.Gateway.Tests.Decisions;

public sealed class VariantPickTests
{
    [Fact]
    public void EightyTwentySplitIsWithinFivePointsOverAThousandPicks()
    {
        var random = new Random(29);
        var counts = new int[2];
        for (var i = 0; i < 1000; i++) counts[VariantPick.Choose([80, 20], random.NextDouble())!.Value]++;
        Assert.InRange(counts[0] / 10.0, 75, 85);
        Assert.InRange(counts[1] / 10.0, 15, 25);
    }

    [Fact]
    public void ThreeWaySplitFollowsTheWeights()
    {
        var random = new Random(7);
        var counts = new int[3];
        for (var i = 0; i < 1000; i++) counts[VariantPick.Choose([50, 30, 20], random.NextDouble())!.Value]++;
        Assert.InRange(counts[0] / 10.0, 45, 55);
        Assert.InRange(counts[1] / 10.0, 25, 35);
        Assert.InRange(counts[2] / 10.0, 15, 25);
    }

    [Fact]
    public void ZeroWeightIsNeverPickedAndItsShareGoesToTheOthers()
    {
        for (var sample = 0.0; sample < 1; sample += 0.01) Assert.Equal(1, VariantPick.Choose([0, 5, 0], sample));
        Assert.Equal(2, VariantPick.Choose([1, 0, 1], 0.99));
        Assert.Equal(0, VariantPick.Choose([1, 0, 1], 0));
    }

    [Fact]
    public void NothingEligibleIsNull()
    {
        Assert.Null(VariantPick.Choose([0, 0], 0.5));
        Assert.Null(VariantPick.Choose([], 0.5));
    }

    [Fact]
    public void EdgesOfTheSampleStayInRange()
    {
        Assert.Equal(0, VariantPick.Choose([1, 1], 0));
        Assert.Equal(1, VariantPick.Choose([1, 1], 1.0));
        Assert.Equal(1, VariantPick.Choose([1, 1], Math.BitDecrement(1.0)));
    }
}
