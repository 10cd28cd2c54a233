using DeepSeek.Model.Experts;
using DeepSeek.Model.Parallelism;

namespace DeepSeek.Model.Tests.Parallelism;

public sealed class ExpertPlannerTests
{
    [Theory]
    [InlineData(8, 1)]
    [InlineData(8, 2)]
    [InlineData(8, 3)]
    [InlineData(8, 4)]
    [InlineData(64, 3)]
    public void Uniform_load_spreads_every_expert_once_as_evenly_as_counts_allow(int experts, int ranks)
    {
        var layer = ExpertPlanner.PlanLayer(1, Uniform(experts, 100), ranks, 0);

        AssertWellFormed(layer, experts, ranks, 0);
        Assert.All(Enumerable.Range(0, experts), e => Assert.Single(layer.RanksOf(e)));
        var counts = Enumerable.Range(0, ranks).Select(r => layer.ExpertsOn(r).Count).ToArray();
        Assert.True(counts.Max() - counts.Min() <= 1, $"expert counts per rank {string.Join(",", counts)}");
        // The best any placement of whole experts can do: ⌈E/ranks⌉ experts' tokens on the fullest rank.
        var best = (double)((experts + ranks - 1) / ranks) * ranks / experts;
        Assert.Equal(best, layer.ImbalanceRatio(Uniform(experts, 100)), 12);
    }

    [Fact]
    public void Ten_experts_on_three_ranks_hold_four_three_and_three()
    {
        var layer = ExpertPlanner.PlanLayer(1, Uniform(10, 7), 3, 0);

        AssertWellFormed(layer, 10, 3, 0);
        Assert.Equal([3, 3, 4], Enumerable.Range(0, 3).Select(r => layer.ExpertsOn(r).Count).Order());
        Assert.Equal([21, 21, 28], layer.TokensPerRank(Uniform(10, 7)).Order());
    }

    [Fact]
    public void One_hot_expert_without_copies_keeps_its_rank_as_light_in_experts_as_the_slots_allow()
    {
        long[] load = [900, 100, 100, 100, 100, 100, 100, 100, 100, 100];
        var layer = ExpertPlanner.PlanLayer(1, load, 3, 0);

        AssertWellFormed(layer, 10, 3, 0);
        var hotRank = layer.RanksOf(0).Single();
        // Four slots per rank force a second expert onto the hot rank; nothing more goes there.
        Assert.Equal(2, layer.ExpertsOn(hotRank).Count);
        Assert.Equal([1000, 400, 400], layer.TokensPerRank(load).OrderDescending());
        Assert.Equal(1000 / 600.0, layer.ImbalanceRatio(load), 12);
    }

    [Fact]
    public void Redundant_copies_of_a_hot_expert_split_its_tokens_and_even_out_the_ranks()
    {
        long[] load = [900, 100, 100, 100, 100, 100, 100, 100, 100, 100];
        var layer = ExpertPlanner.PlanLayer(1, load, 3, 2);

        AssertWellFormed(layer, 10, 3, 2);
        Assert.Equal([0, 1, 2], layer.RanksOf(0));
        Assert.Equal([600, 600, 600], layer.TokensPerRank(load));
        Assert.Equal(1.0, layer.ImbalanceRatio(load));
        Assert.True(layer.ImbalanceRatio(load) < ExpertPlanner.PlanLayer(1, load, 3, 0).ImbalanceRatio(load));
    }

    [Fact]
    public void Each_redundant_copy_goes_to_the_expert_with_the_most_tokens_per_copy()
    {
        // 50 gets the first copy (25 per copy); then 30 has the most per copy and gets the second.
        long[] load = [5, 50, 7, 30, 1, 2];
        var layer = ExpertPlanner.PlanLayer(1, load, 2, 2);

        AssertWellFormed(layer, 6, 2, 2);
        Assert.Equal([0, 1], layer.RanksOf(1));
        Assert.Equal([0, 1], layer.RanksOf(3));
        Assert.All(new[] { 0, 2, 4, 5 }, e => Assert.Single(layer.RanksOf(e)));
    }

    [Fact]
    public void Copies_split_an_experts_picks_as_evenly_as_integers_allow_the_first_copy_taking_the_extra()
    {
        var layer = new LayerPlacement(1, 3, [[0, 1], [0, 2]]);

        Assert.Equal([0, 1], layer.RanksOf(0));
        Assert.Equal([4 + 10, 3 + 5], layer.TokensPerRank([7, 10, 5]));
        Assert.Equal(4, layer.CopyCount);
    }

    [Fact]
    public void Improvement_swaps_past_the_greedy_packing()
    {
        // Longest-processing-time first alone ends at 7 | 5 (3+2+2 | 3+2); a swap of a 3 for a 2 gives 6 | 6.
        long[] load = [3, 3, 2, 2, 2];
        var layer = ExpertPlanner.PlanLayer(1, load, 2, 0);

        AssertWellFormed(layer, 5, 2, 0);
        Assert.Equal([6, 6], layer.TokensPerRank(load));
    }

    [Fact]
    public void Uneven_counts_rotate_between_ranks_over_the_layers_so_memory_stays_even()
    {
        var layers = Enumerable.Range(1, 26).Select(l => new ExpertLoad(l, Uniform(64, 1))).ToList();
        var placement = ExpertPlanner.Plan(layers, 3, 0);

        var copies = Enumerable.Range(0, 3).Select(r => placement.Layers.Sum(l => l.ExpertsOn(r).Count)).ToArray();
        Assert.Equal(26 * 64, copies.Sum());
        Assert.True(copies.Max() - copies.Min() <= 1, $"copies per rank over all layers: {string.Join(", ", copies)}");
    }

    [Fact]
    public void No_observed_load_is_planned_as_uniform()
    {
        var zero = ExpertPlanner.PlanLayer(1, new long[10], 3, 1);
        var uniform = ExpertPlanner.PlanLayer(1, Uniform(10, 5), 3, 1);
        Assert.All(Enumerable.Range(0, 3), r => Assert.Equal(uniform.ExpertsOn(r), zero.ExpertsOn(r)));
    }

    [Fact]
    public void Placement_is_a_pure_function_of_its_inputs()
    {
        var random = new Random(17);
        var load = Enumerable.Range(0, 64).Select(_ => (long)random.Next(0, 10_000)).ToArray();
        var a = ExpertPlanner.PlanLayer(3, load, 4, 8);
        var b = ExpertPlanner.PlanLayer(3, [.. load], 4, 8);
        Assert.All(Enumerable.Range(0, 4), r => Assert.Equal(a.ExpertsOn(r), b.ExpertsOn(r)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Random_skewed_loads_give_well_formed_placements_within_a_third_of_the_lower_bound(int seed)
    {
        var random = new Random(seed);
        foreach (var (experts, ranks, redundant) in new[] { (64, 4, 0), (64, 4, 8), (10, 3, 2), (256, 8, 32), (7, 5, 3) })
        {
            // Zipf-like: a few experts take most tokens, as routers do under topical traffic.
            var load = Enumerable.Range(0, experts).Select(e => (long)(100_000 / Math.Pow(1 + random.Next(experts), 1.2))).ToArray();
            var layer = ExpertPlanner.PlanLayer(1, load, ranks, redundant);
            AssertWellFormed(layer, experts, ranks, redundant);

            // No placement beats the mean per rank, nor puts less than its share of the hottest copy on a rank.
            var perRank = layer.TokensPerRank(load);
            var lowerBound = Math.Max(load.Sum() / (double)ranks, Enumerable.Range(0, experts).Max(e => load[e] / (double)layer.RanksOf(e).Count));
            Assert.True(perRank.Max() <= 4.0 / 3.0 * lowerBound + 1,
                $"{experts} experts on {ranks} ranks + {redundant}: fullest rank {perRank.Max()}, lower bound {lowerBound}");
        }
    }

    [Fact]
    public void Invalid_inputs_are_refused_with_the_reason()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ExpertPlanner.PlanLayer(1, Uniform(8, 1), 0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ExpertPlanner.PlanLayer(1, Uniform(8, 1), 2, -1));
        Assert.Throws<ArgumentException>(() => ExpertPlanner.PlanLayer(1, [1, -1], 2, 0));
        var tooMany = Assert.Throws<ArgumentException>(() => ExpertPlanner.PlanLayer(1, Uniform(4, 1), 2, 5));
        Assert.Contains("more than one copy of an expert per rank", tooMany.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new LayerPlacement(1, 3, [[0, 1], [1]]));
        Assert.Throws<ArgumentException>(() => new LayerPlacement(1, 3, [[0, 0, 1], [2]]));
        Assert.Throws<ArgumentException>(() => new LayerPlacement(1, 3, [[0, 1], [2, 3]]));
    }

    [Fact]
    public void Imbalance_ratio_is_max_over_mean_of_tokens_per_shard()
    {
        Assert.Equal(1.0, ExpertLoad.ImbalanceRatio([5, 5, 5, 5]));
        Assert.Equal(2.0, ExpertLoad.ImbalanceRatio([8, 0, 4, 4]));
        Assert.Equal(0.0, ExpertLoad.ImbalanceRatio([0, 0]));
        Assert.Equal(0.0, ExpertLoad.ImbalanceRatio([]));
        // Per rank of a placement: ranks 0 and 1 hold {0, 1} and {2}; 30 + 10 against 20.
        Assert.Equal(40 / 30.0, new LayerPlacement(1, 3, [[0, 1], [2]]).ImbalanceRatio([30, 10, 20]), 12);
    }

    [Fact]
    public void Initial_placement_covers_every_moe_layer_of_a_config()
    {
        var config = Model.Configuration.DeepSeekConfig.Load(Support.Fixtures.Dir(Support.Fixtures.V3Tiny));
        var placement = ExpertPlacement.Initial(config, 3, 1);
        Assert.Equal([1, 2], placement.Layers.Select(l => l.LayerIndex));
        Assert.All(placement.Layers, l => AssertWellFormed(l, config.NRoutedExperts, 3, 1));
    }

    private static long[] Uniform(int experts, long tokens) => Enumerable.Repeat(tokens, experts).ToArray();

    private static void AssertWellFormed(LayerPlacement layer, int experts, int ranks, int redundant)
    {
        Assert.Equal(ranks, layer.RankCount);
        Assert.Equal(experts + redundant, layer.CopyCount);
        var slots = (experts + redundant + ranks - 1) / ranks;
        for (var r = 0; r < ranks; r++)
        {
            Assert.True(layer.ExpertsOn(r).Count <= slots, $"rank {r} holds {layer.ExpertsOn(r).Count} experts, more than {slots}");
            Assert.Equal(layer.ExpertsOn(r).Distinct().Count(), layer.ExpertsOn(r).Count);
        }
        Assert.All(Enumerable.Range(0, experts), e => Assert.NotEmpty(layer.RanksOf(e)));
    }
}
