using DeepSeek.Model.Experts;
using DeepSeek.Model.Parallelism;

namespace DeepSeek.Model.Tests.Parallelism;

/// <summary>The pure parts of rebalancing: what each rank loads, keeps and frees, rank labels that keep experts in place, and when to switch.</summary>
public sealed class RebalancePolicyTests
{
    private static ExpertPlacement Uniform(int experts, int ranks, int redundant, params int[] layers) =>
        ExpertPlanner.Plan([.. layers.Select(l => new ExpertLoad(l, new long[experts]))], ranks, redundant);

    private static LayerPlacement Layer(int index, int experts, params int[][] expertsOfRank) =>
        new(index, experts, [.. expertsOfRank.Select(e => (IReadOnlyList<int>)e)]);

    [Fact]
    public void A_move_loads_what_is_newly_assigned_keeps_what_stays_and_frees_the_rest()
    {
        var current = new ExpertPlacement(3, [Layer(1, 6, [0, 1], [2, 3], [4, 5])]);
        var next = new ExpertPlacement(3, [Layer(1, 6, [0, 5], [2, 3, 1], [4, 1])]) { Version = 2 };

        var moves = Enumerable.Range(0, 3).Select(rank => Assert.Single(PlacementChange.For(current, next, rank))).ToList();

        Assert.Equal([[5], [1], [1]], moves.Select(m => m.Load));
        Assert.Equal([[0], [2, 3], [4]], moves.Select(m => m.Keep));
        Assert.Equal([[1], [], [5]], moves.Select(m => m.Free));
        Assert.False(moves[1].IsEmpty);
        Assert.Equal(3, PlacementChange.ExpertsLoaded(current, next));
        Assert.True(PlacementChange.For(current, current, 0)[0].IsEmpty);
    }

    [Fact]
    public void Moves_between_placements_of_different_groups_or_layers_are_refused()
    {
        var current = Uniform(8, 3, 0, 1, 2);
        Assert.Throws<ArgumentException>(() => PlacementChange.For(current, Uniform(8, 2, 0, 1, 2), 0));
        Assert.Throws<ArgumentException>(() => PlacementChange.For(current, Uniform(8, 3, 0, 1, 3), 0));
        Assert.Throws<ArgumentException>(() => PlacementChange.For(current, Uniform(10, 3, 0, 1, 2), 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => PlacementChange.For(current, current, 3));
    }

    [Fact]
    public void Aligning_ranks_undoes_a_relabelling_so_nothing_moves()
    {
        var current = new ExpertPlacement(3, [Layer(1, 8, [0, 3, 6], [1, 4, 7], [2, 5])]);
        var relabelled = new ExpertPlacement(3, [Layer(1, 8, [2, 5], [0, 3, 6], [1, 4, 7])]) { Version = 2 };
        Assert.Equal(8, PlacementChange.ExpertsLoaded(current, relabelled));

        var aligned = PlacementChange.AlignRanks(current, relabelled);

        Assert.Equal(0, PlacementChange.ExpertsLoaded(current, aligned));
        Assert.Equal(2, aligned.Version);
    }

    [Fact]
    public void Aligning_ranks_changes_no_rank_load_distribution_only_who_holds_it()
    {
        long[] load = [90, 5, 5, 40, 3, 30, 2, 1];
        var current = Uniform(8, 3, 2, 1);
        var next = ExpertPlanner.Plan([new ExpertLoad(1, load)], 3, 2);

        var aligned = PlacementChange.AlignRanks(current, next);

        Assert.Equal(next.Layer(1).TokensPerRank(load).Order(), aligned.Layer(1).TokensPerRank(load).Order());
        Assert.True(PlacementChange.ExpertsLoaded(current, aligned) <= PlacementChange.ExpertsLoaded(current, next));
    }

    [Fact]
    public void Skewed_load_switches_to_a_placement_whose_busiest_rank_gets_fewer_picks()
    {
        // Experts 4 and 7 get every pick in both layers (what a repeated token does on the tiny fixture).
        var current = Uniform(8, 3, 0, 1, 2);
        long[] skewed = [0, 0, 0, 0, 24, 0, 0, 24];
        var observed = new[] { new ExpertLoad(1, skewed), new ExpertLoad(2, skewed) };

        var decision = RebalancePolicy.Decide(current, observed, redundantCopies: 0);

        Assert.True(decision.Switches, decision.Reason);
        var next = decision.Next!;
        Assert.Equal(current.Version + 1, next.Version);
        foreach (var layer in next.Layers)
        {
            var before = current.Layer(layer.LayerIndex).TokensPerRank(skewed).Max();
            Assert.True(layer.TokensPerRank(skewed).Max() < before, $"layer {layer.LayerIndex}");
            Assert.Equal(8, Enumerable.Range(0, 8).Count(e => layer.RanksOf(e).Count == 1));
        }
        Assert.Contains("layer 1: imbalance", decision.Reason, StringComparison.Ordinal);
        // Deciding again on the same load keeps what it chose: no back-and-forth.
        Assert.False(RebalancePolicy.Decide(next, observed, 0).Switches);
    }

    [Fact]
    public void Redundant_copies_go_to_the_hot_experts_and_even_out_the_ranks()
    {
        var current = Uniform(8, 3, 4, 1);
        long[] skewed = [0, 0, 0, 0, 24, 0, 0, 24];

        var decision = RebalancePolicy.Decide(current, [new ExpertLoad(1, skewed)], redundantCopies: 4);

        var layer = decision.Next!.Layer(1);
        Assert.Equal((3, 3), (layer.RanksOf(4).Count, layer.RanksOf(7).Count));
        Assert.Equal(1.0, layer.ImbalanceRatio(skewed));
        Assert.Equal(12, layer.CopyCount);
    }

    [Fact]
    public void A_layer_that_would_not_gain_keeps_its_placement_while_another_switches()
    {
        var current = Uniform(8, 3, 0, 1, 2);
        long[] even = [10, 10, 10, 10, 10, 10, 10, 10];
        long[] skewed = [0, 0, 0, 0, 24, 0, 0, 24];

        var decision = RebalancePolicy.Decide(current, [new ExpertLoad(1, even), new ExpertLoad(2, skewed)], 0);

        Assert.True(decision.Switches);
        Assert.Same(current.Layer(1), decision.Next!.Layer(1));
        Assert.NotSame(current.Layer(2), decision.Next.Layer(2));
        Assert.DoesNotContain("layer 1", decision.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Even_load_keeps_the_placement()
    {
        var current = Uniform(8, 3, 0, 1, 2);
        long[] even = [10, 11, 9, 10, 10, 10, 12, 8];

        var decision = RebalancePolicy.Decide(current, [new ExpertLoad(1, even), new ExpertLoad(2, even)], 0);

        Assert.False(decision.Switches);
        Assert.True(decision.Judged);
        Assert.Contains("no layer", decision.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_mildly_imbalanced_layer_is_left_alone_even_where_a_better_placement_exists()
    {
        var current = new ExpertPlacement(3, [Layer(1, 6, [0, 1], [2, 3], [4, 5])]);
        long[] load = [12, 11, 10, 10, 9, 8];
        Assert.True(current.Layer(1).ImbalanceRatio(load) < RebalancePolicy.MinImbalance);
        Assert.Equal(20, ExpertPlanner.PlanLayer(1, load, 3, 0).TokensPerRank(load).Max());

        Assert.False(RebalancePolicy.Decide(current, [new ExpertLoad(1, load)], 0).Switches);
        Assert.True(RebalancePolicy.Decide(current, [new ExpertLoad(1, [24, 22, 10, 10, 9, 8])], 0).Switches);
    }

    [Fact]
    public void Older_intervals_weigh_half_as_much_per_interval()
    {
        IReadOnlyList<ExpertLoad> history = [new ExpertLoad(1, [8, 4, 0]), new ExpertLoad(2, [100, 0, 0])];

        var judged = RebalancePolicy.Accumulate(history, [new ExpertLoad(1, [1, 1, 1]), new ExpertLoad(2, [0, 0, 6]), new ExpertLoad(3, [2, 2, 2])]);

        Assert.Equal([[5, 3, 1], [50, 0, 6], [2, 2, 2]], judged.Select(l => l.TokensPerExpert));
        Assert.Equal([1, 2, 3], judged.Select(l => l.LayerIndex));
        Assert.Equal([3, 3], RebalancePolicy.Accumulate(null, [new ExpertLoad(1, [3, 3])])[0].TokensPerExpert);
    }

    [Fact]
    public void A_data_parallel_groups_load_is_the_sum_of_what_each_rank_routed()
    {
        IReadOnlyList<ExpertLoad> rank0 = [new ExpertLoad(2, [1, 0, 5]), new ExpertLoad(1, [8, 4, 0])];
        IReadOnlyList<ExpertLoad> rank1 = [new ExpertLoad(1, [0, 2, 3]), new ExpertLoad(2, [7, 7, 0])];

        var group = RebalancePolicy.Sum([rank0, [], rank1]);

        Assert.Equal([1, 2], group.Select(l => l.LayerIndex));
        Assert.Equal([[8, 6, 3], [8, 7, 5]], group.Select(l => l.TokensPerExpert));
        Assert.Equal([8, 4, 0], rank0[1].TokensPerExpert);
        Assert.Throws<ArgumentException>(() => RebalancePolicy.Sum([rank0, [new ExpertLoad(1, [1, 2])]]));
    }

    [Fact]
    public void Too_few_picks_are_not_judged_and_nothing_moves()
    {
        var current = Uniform(8, 3, 0, 1, 2);
        // 31 picks: under 4 per expert of 8.
        long[] few = [0, 0, 0, 0, 16, 0, 0, 15];

        var decision = RebalancePolicy.Decide(current, [new ExpertLoad(1, few), new ExpertLoad(2, few)], 0);

        Assert.False(decision.Switches);
        Assert.False(decision.Judged);
        Assert.False(RebalancePolicy.Decide(current, [], 0).Switches);
    }

    [Fact]
    public void One_rank_never_rebalances()
    {
        var current = Uniform(8, 1, 0, 1);
        var decision = RebalancePolicy.Decide(current, [new ExpertLoad(1, [0, 0, 0, 0, 100, 0, 0, 100])], 0);
        Assert.False(decision.Switches);
    }

    [Theory]
    [InlineData(0, 100, false)]
    [InlineData(5, 4.9, false)]
    [InlineData(5, 5, true)]
    [InlineData(5, 60, true)]
    public void A_look_is_due_an_interval_after_the_last_never_for_interval_zero(double intervalSeconds, double elapsedSeconds, bool due)
    {
        var last = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        Assert.Equal(due, RebalancePolicy.IsDue(last, last.AddSeconds(elapsedSeconds), TimeSpan.FromSeconds(intervalSeconds)));
    }
}
