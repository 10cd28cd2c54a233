using DeepSeek.Model.Experts;
using DeepSeek.Model.Parallelism;
using DeepSeek.Runtime.Experts;
using DeepSeek.Runtime.Grpc.V1;

namespace DeepSeek.Runtime.Tests.Experts;

/// <summary>A placement the leader sends to its ranks: the same placement on arrival, and a clear refusal of one that does not fit the rank.</summary>
public sealed class PlacementMessagesTests
{
    private static readonly ExpertPlacement Placement =
        ExpertPlanner.Plan([new ExpertLoad(1, [90, 5, 5, 40, 3, 30, 2, 1]), new ExpertLoad(2, new long[8])], 3, 2) with { Version = 7 };

    [Fact]
    public void A_placement_arrives_as_sent()
    {
        var received = PlacementMessages.FromRequest(PlacementMessages.ToRequest(Placement), 3, [1, 2], 8);

        Assert.Equal(7, received.Version);
        Assert.Equal(3, received.RankCount);
        foreach (var layer in Placement.Layers)
            for (var rank = 0; rank < 3; rank++)
                Assert.Equal(layer.ExpertsOn(rank), received.Layer(layer.LayerIndex).ExpertsOn(rank));
    }

    [Fact]
    public void A_placement_that_does_not_fit_the_rank_is_refused_saying_why()
    {
        var request = PlacementMessages.ToRequest(Placement);
        Assert.Contains("this group has 4", Assert.Throws<ArgumentException>(() => PlacementMessages.FromRequest(request, 4, [1, 2], 8)).Message, StringComparison.Ordinal);
        Assert.Contains("MoE layers are [1, 2, 3]", Assert.Throws<ArgumentException>(() => PlacementMessages.FromRequest(request, 3, [1, 2, 3], 8)).Message, StringComparison.Ordinal);
        Assert.Contains("has 16 experts", Assert.Throws<ArgumentException>(() => PlacementMessages.FromRequest(request, 3, [1, 2], 16)).Message, StringComparison.Ordinal);

        var unheld = request.Clone();
        unheld.Layers[0].Ranks[0].Experts.Clear();
        unheld.Layers[0].Ranks[1].Experts.Clear();
        unheld.Layers[0].Ranks[2].Experts.Clear();
        Assert.Contains("no rank holds expert 0", Assert.Throws<ArgumentException>(() => PlacementMessages.FromRequest(unheld, 3, [1, 2], 8)).Message, StringComparison.Ordinal);

        var version = request.Clone();
        version.PlacementVersion = 0;
        Assert.Throws<ArgumentException>(() => PlacementMessages.FromRequest(version, 3, [1, 2], 8));
        var missingRank = request.Clone();
        missingRank.Layers[1].Ranks.RemoveAt(2);
        Assert.Throws<ArgumentException>(() => PlacementMessages.FromRequest(missingRank, 3, [1, 2], 8));
    }

    [Fact]
    public void A_ranks_observed_load_arrives_as_sent_and_a_malformed_one_is_refused_saying_why()
    {
        IReadOnlyList<ExpertLoad> load = [new ExpertLoad(1, [3, 0, 0, 9, 1, 0, 0, 2]), new ExpertLoad(2, [0, 0, 0, 0, 0, 0, 0, 7])];
        var reply = PlacementMessages.ToReply(load);

        var received = PlacementMessages.FromReply(reply, [1, 2], 8);

        Assert.Equal(load.Select(l => l.LayerIndex), received.Select(l => l.LayerIndex));
        Assert.Equal(load.Select(l => l.TokensPerExpert), received.Select(l => l.TokensPerExpert));
        Assert.Empty(PlacementMessages.FromReply(new ExpertLoadReply(), [1, 2], 8));
        Assert.Contains("MoE layers are [1, 2, 3]", Assert.Throws<FormatException>(() => PlacementMessages.FromReply(reply, [1, 2, 3], 8)).Message, StringComparison.Ordinal);
        var negative = reply.Clone();
        negative.Layers[1].Picks[3] = -1;
        Assert.Contains("Layer 2's load must be 8 non-negative counts", Assert.Throws<FormatException>(() => PlacementMessages.FromReply(negative, [1, 2], 8)).Message, StringComparison.Ordinal);
        var shorter = reply.Clone();
        shorter.Layers[0].Picks.RemoveAt(0);
        Assert.Throws<FormatException>(() => PlacementMessages.FromReply(shorter, [1, 2], 8));
        var twice = reply.Clone();
        twice.Layers[1].Layer = 1;
        Assert.Throws<FormatException>(() => PlacementMessages.FromReply(twice, [1, 2], 8));
    }

    [Theory]
    [InlineData(new string[0], 0.0)]
    [InlineData(new[] { "--rebalance-interval-seconds", "600" }, 600.0)]
    [InlineData(new[] { "--rebalance-interval-seconds", "2.5" }, 2.5)]
    public void Serve_takes_the_rebalance_interval_in_seconds_never_by_default(string[] args, double seconds) =>
        Assert.Equal(seconds, DeepSeek.Runtime.Cli.ServeCommand.Build().Parse(args).GetValue<double>("--rebalance-interval-seconds"));
}
