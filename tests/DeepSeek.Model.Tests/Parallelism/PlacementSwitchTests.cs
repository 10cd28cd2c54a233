using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Parallelism;

/// <summary>
/// A materialised group moving to another placement (in-process transport): staging loads a rank's
/// new experts beside its own and changes nothing; switching every rank gives the reference tokens
/// on the new placement with exactly the memory of a group started on it; a rank on another
/// version refuses the leader's dispatch.
/// </summary>
public sealed class PlacementSwitchTests
{
    [Theory]
    [InlineData(3, 0)]
    [InlineData(3, 4)]
    [InlineData(4, 2)]
    public void Switching_every_rank_keeps_the_reference_tokens_and_holds_what_a_fresh_group_would(int ranks, int redundant)
    {
        var reference = Fixtures.LoadReference(Fixtures.V3Tiny);
        var (_, initial, next) = SkewedPlacements.Of(ranks, redundant);
        using var checkpoint = SafetensorsCheckpoint.Open(Fixtures.Dir(Fixtures.V3Tiny));
        using var group = ShardedGroup.Load(Fixtures.V3Tiny, initial, ScalarType.Float64);
        var sizeBefore = group.Ranks.Select(m => m.ParameterCount).ToList();

        // Abandoned staging leaves every rank as it was.
        for (var rank = 0; rank < ranks; rank++)
            foreach (var (_, staged) in SkewedPlacements.Stage(group.Ranks[rank], next, rank, checkpoint)) staged.Dispose();
        var stagedByRank = Enumerable.Range(0, ranks).Select(rank => SkewedPlacements.Stage(group.Ranks[rank], next, rank, checkpoint)).ToList();
        Assert.All(group.Ranks, m => Assert.Equal(ExpertPlacement.InitialVersion, ExpertParallelism.VersionOf(m)));
        Assert.Equal(sizeBefore, group.Ranks.Select(m => m.ParameterCount));
        Assert.Equal(reference.Prompts[0].Greedy, GreedyDecoding.Cached(group.Leader, reference.Prompts[0].InputIds, reference.Prompts[0].Greedy.Length));
        for (var rank = 0; rank < ranks; rank++)
            Assert.Equal(PlacementChange.For(initial, next, rank).Select(m => m.Load), stagedByRank[rank].Select(s => s.Move.Load));
        Assert.True(stagedByRank.Sum(s => s.Sum(m => m.Move.Load.Count)) > 0);

        for (var rank = 0; rank < ranks; rank++)
            ExpertParallelism.Switch(group.Ranks[rank], next, [.. stagedByRank[rank].Select(s => s.Staged)]);

        using var fresh = ShardedGroup.Load(Fixtures.V3Tiny, next, ScalarType.Float64);
        for (var rank = 0; rank < ranks; rank++)
        {
            var model = group.Ranks[rank];
            Assert.Equal(next.Version, ExpertParallelism.VersionOf(model));
            Assert.All(model.RoutedExperts, e => Assert.Equal(next.Layer(e.LayerIndex).ExpertsOn(rank), e.HeldExperts));
            Assert.Equal(fresh.Ranks[rank].ParameterCount, model.ParameterCount);
        }
        foreach (var prompt in reference.Prompts)
            Assert.Equal(prompt.Greedy, GreedyDecoding.Cached(group.Leader, prompt.InputIds, prompt.Greedy.Length));

        // The moved experts are the checkpoint's: the switched group's logits equal the fresh group's.
        var tokens = reference.Prompts[3].InputIds;
        using var switchedCache = group.Leader.CreateCache(tokens.Length);
        using var freshCache = fresh.Leader.CreateCache(tokens.Length);
        var batch = ForwardBatch.Contiguous(tokens, 0, LogitsSelection.AllTokens);
        using var switched = group.Leader.Forward(batch, switchedCache);
        using var expected = fresh.Leader.Forward(batch, freshCache);
        Assert.Equal(0.0, (switched.Logits - expected.Logits).abs().max().item<double>());
        Assert.Equal(next.Layers.Select(l => l.TokensPerRank(switched.ExpertLoads.Single(x => x.LayerIndex == l.LayerIndex).TokensPerExpert)),
            switched.ExpertLoads.Select(l => l.TokensPerShard));
    }

    [Fact]
    public void A_rank_on_another_placement_refuses_the_leaders_dispatch()
    {
        var (_, initial, next) = SkewedPlacements.Of(3, 0);
        using var checkpoint = SafetensorsCheckpoint.Open(Fixtures.Dir(Fixtures.V3Tiny));
        using var group = ShardedGroup.Load(Fixtures.V3Tiny, initial, ScalarType.Float32);
        ExpertParallelism.Switch(group.Ranks[1], next, [.. SkewedPlacements.Stage(group.Ranks[1], next, 1, checkpoint).Select(s => s.Staged)]);
        var prompt = Fixtures.LoadReference(Fixtures.V3Tiny).Prompts[3].InputIds;
        using var cache = group.Leader.CreateCache(prompt.Length);

        var error = Assert.Throws<ExpertTransportException>(() => group.Leader.Forward(ForwardBatch.Contiguous(prompt, 0), cache));

        Assert.Contains($"Rank 1 runs placement {next.Version}, it was sent layer", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Data_parallel_ranks_switching_one_by_one_answer_both_placements_until_every_rank_has_switched()
    {
        var reference = Fixtures.LoadReference(Fixtures.V3Tiny);
        var (_, initial, next) = SkewedPlacements.Of(3, 4);
        using var checkpoint = SafetensorsCheckpoint.Open(Fixtures.Dir(Fixtures.V3Tiny));
        using var group = ShardedGroup.Load(Fixtures.V3Tiny, initial, ScalarType.Float64);
        using var fresh = ShardedGroup.Load(Fixtures.V3Tiny, next, ScalarType.Float64);
        var staged = Enumerable.Range(0, 3).Select(rank => SkewedPlacements.Stage(group.Ranks[rank], next, rank, checkpoint).Select(s => s.Staged).ToList()).ToList();
        for (var rank = 0; rank < 3; rank++) ExpertParallelism.AnswerBeside(group.Ranks[rank], staged[rank]);
        void EveryRankGivesTheReferenceTokens(string when)
        {
            // Each rank routes its own prompts by its own placement; its peers answer by that version.
            foreach (var model in group.Ranks)
                foreach (var prompt in reference.Prompts)
                    Assert.True(prompt.Greedy.SequenceEqual(GreedyDecoding.Cached(model, prompt.InputIds, prompt.Greedy.Length)),
                        $"{when}: rank {group.Ranks.ToList().IndexOf(model)} on placement {ExpertParallelism.VersionOf(model)}");
        }

        // Rank 1 switches first: it routes by the next placement, which ranks 0 and 2 answer with what they staged;
        // they route by the initial one, which rank 1 answers with what it retired.
        var retired = new List<StagedExperts>[3];
        retired[1] = [.. ExpertParallelism.Switch(group.Ranks[1], next, staged[1], retire: true)];
        Assert.All(retired[1], r => Assert.Equal(initial.Version, r.Version));
        EveryRankGivesTheReferenceTokens("rank 1 switched");

        retired[0] = [.. ExpertParallelism.Switch(group.Ranks[0], next, staged[0], retire: true)];
        retired[2] = [.. ExpertParallelism.Switch(group.Ranks[2], next, staged[2], retire: true)];
        EveryRankGivesTheReferenceTokens("every rank switched, the old experts still answered for");

        // Every rank switched: the retired experts go, and each rank holds exactly what a group started on the next placement holds.
        for (var rank = 0; rank < 3; rank++)
        {
            ExpertParallelism.AnswerBeside(group.Ranks[rank], null);
            foreach (var old in retired[rank]) old.Dispose();
            Assert.Equal(fresh.Ranks[rank].ParameterCount, group.Ranks[rank].ParameterCount);
        }
        EveryRankGivesTheReferenceTokens("the old experts freed");
    }

    [Fact]
    public void A_rank_that_switched_without_retiring_refuses_peers_still_on_the_placement_before()
    {
        var (_, initial, next) = SkewedPlacements.Of(3, 0);
        using var checkpoint = SafetensorsCheckpoint.Open(Fixtures.Dir(Fixtures.V3Tiny));
        using var group = ShardedGroup.Load(Fixtures.V3Tiny, initial, ScalarType.Float32);
        Assert.Empty(ExpertParallelism.Switch(group.Ranks[1], next, [.. SkewedPlacements.Stage(group.Ranks[1], next, 1, checkpoint).Select(s => s.Staged)]));
        var prompt = Fixtures.LoadReference(Fixtures.V3Tiny).Prompts[3].InputIds;
        using var cache = group.Ranks[2].CreateCache(prompt.Length);

        var error = Assert.Throws<ExpertTransportException>(() => group.Ranks[2].Forward(ForwardBatch.Contiguous(prompt, 0), cache));

        Assert.Contains($"Rank 1 runs placement {next.Version}, it was sent layer", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Switching_needs_every_layer_staged_for_that_placement()
    {
        var (_, initial, next) = SkewedPlacements.Of(3, 0);
        using var checkpoint = SafetensorsCheckpoint.Open(Fixtures.Dir(Fixtures.V3Tiny));
        using var group = ShardedGroup.Load(Fixtures.V3Tiny, initial, ScalarType.Float32);
        var staged = SkewedPlacements.Stage(group.Leader, next, 0, checkpoint);

        Assert.Throws<ArgumentException>(() => ExpertParallelism.Switch(group.Leader, next, [staged[0].Staged]));
        Assert.Throws<ArgumentException>(() => ExpertParallelism.Switch(group.Leader, next with { Version = 7 }, [.. staged.Select(s => s.Staged)]));
        Assert.Equal(ExpertPlacement.InitialVersion, ExpertParallelism.VersionOf(group.Leader));
        foreach (var (_, experts) in staged) experts.Dispose();
    }
}
