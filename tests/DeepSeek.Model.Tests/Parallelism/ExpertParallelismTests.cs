using System.Text.RegularExpressions;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;
using DeepSeek.Model.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Parallelism;

/// <summary>
/// A model sharded over N simulated ranks in one process (in-process transport): the same tokens and
/// logits as the unsharded model, each rank holding exactly the non-expert weights plus its experts.
/// </summary>
public sealed partial class ExpertParallelismTests
{
    public static TheoryData<string, int, int> Groups()
    {
        var data = new TheoryData<string, int, int>();
        foreach (var name in new[] { Fixtures.V3Tiny, Fixtures.V2LiteTiny })
            foreach (var (ranks, redundant) in new[] { (2, 0), (3, 0), (4, 0), (3, 2), (4, 4) })
                data.Add(name, ranks, redundant);
        return data;
    }

    [Theory]
    [MemberData(nameof(Groups))]
    public void Sharded_group_gives_the_reference_greedy_tokens_and_the_unsharded_logits(string name, int ranks, int redundant)
    {
        var reference = Fixtures.LoadReference(name);
        using var whole = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.Float64, CPU);
        using var group = ShardedGroup.Load(name, ExpertPlacement.Initial(DeepSeekConfig.Load(Fixtures.Dir(name)), ranks, redundant), ScalarType.Float64);

        foreach (var prompt in reference.Prompts)
        {
            Assert.Equal(prompt.Greedy, GreedyDecoding.Cached(group.Leader, prompt.InputIds, prompt.Greedy.Length));

            using var scope = NewDisposeScope();
            using var wholeCache = whole.CreateCache(prompt.InputIds.Length);
            using var shardedCache = group.Leader.CreateCache(prompt.InputIds.Length);
            var batch = ForwardBatch.Contiguous(prompt.InputIds, 0, LogitsSelection.AllTokens);
            using var expected = whole.Forward(batch, wholeCache);
            using var actual = group.Leader.Forward(batch, shardedCache);
            var difference = (expected.Logits - actual.Logits).abs().max().item<double>();
            Assert.True(difference < 1e-10, $"{name} on {ranks} ranks + {redundant}: logits differ by {difference}");
            Assert.Equal(expected.ExpertLoads.Select(l => l.TokensPerExpert), actual.ExpertLoads.Select(l => l.TokensPerExpert));
        }
        Assert.True(group.Transport.PicksServed.Skip(1).All(p => p > 0), "a peer rank computed nothing");
    }

    [Fact]
    public void Float32_sharded_group_matches_the_reference_logits()
    {
        var reference = Fixtures.LoadReference(Fixtures.V3Tiny);
        using var group = ShardedGroup.Load(Fixtures.V3Tiny, ExpertPlacement.Initial(DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny)), 3, 1), ScalarType.Float32);
        var prompt = reference.Prompts[0];
        using var cache = group.Leader.CreateCache(prompt.InputIds.Length);
        using var output = group.Leader.Forward(ForwardBatch.Contiguous(prompt.InputIds, 0), cache);
        var last = output.Logits[0].to(ScalarType.Float64).data<double>().ToArray();
        Assert.All(Enumerable.Range(0, last.Length), v => Assert.True(Math.Abs(last[v] - prompt.LastLogits[v]) <= 1e-4, $"logit {v}"));
    }

    [Fact]
    public void Each_rank_computes_the_picks_the_placement_expects_copies_splitting_an_experts_picks()
    {
        var config = DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V2LiteTiny));
        var prompts = Fixtures.LoadReference(Fixtures.V2LiteTiny).Prompts;
        // Plan from skewed load so that the hottest experts are replicated.
        long[] skewed = [40, 5, 30, 1, 1, 8, 2, 3];
        var placement = ExpertPlanner.Plan([new Model.Experts.ExpertLoad(1, skewed)], 3, 3);
        Assert.Contains(Enumerable.Range(0, 8), e => placement.Layer(1).RanksOf(e).Count > 1);
        using var group = ShardedGroup.Load(Fixtures.V2LiteTiny, placement, ScalarType.Float64);

        var tokens = prompts.SelectMany(p => p.InputIds).ToArray();
        using var cache = group.Leader.CreateCache(tokens.Length);
        using var output = group.Leader.Forward(ForwardBatch.Contiguous(tokens, 0), cache);

        var load = Assert.Single(output.ExpertLoads);
        var expected = placement.Layer(load.LayerIndex).TokensPerRank(load.TokensPerExpert);
        Assert.Equal(expected.Skip(1), group.Transport.PicksServed.Skip(1));
        Assert.Equal(tokens.Length * config.NumExpertsPerTok, expected.Sum());
    }

    public static TheoryData<string> Fixture => new() { Fixtures.V3Tiny, Fixtures.V2LiteTiny };

    [Theory]
    [MemberData(nameof(Fixture))]
    public void A_rank_holds_exactly_the_non_expert_weights_plus_its_experts(string name)
    {
        var directory = Fixtures.Dir(name);
        var config = DeepSeekConfig.Load(directory);
        using var checkpoint = SafetensorsCheckpoint.Open(directory);
        for (var ranks = 1; ranks <= 4; ranks++)
        {
            var placement = ExpertPlacement.Initial(config, ranks, 0);
            var group = new InProcessExpertGroup(ranks);
            for (var rank = 0; rank < ranks; rank++)
            {
                using var model = DeepSeekForCausalLM.Build(config, ScalarType.Float32);
                ExpertParallelism.Apply(model, placement, rank, group.TransportFor(rank));
                var declared = model.ParameterCount;
                model.Materialise(checkpoint, CPU);

                var expected = checkpoint.TensorNames.Select(checkpoint.Info)
                    .Where(t => IsRunLayer(t.Name, config) && HeldHere(t.Name, placement, rank))
                    .Sum(t => t.ElementCount);
                Assert.Equal(expected, declared);
                Assert.Equal(expected, model.ParameterCount);
                Assert.Equal(expected * 4, model.ParameterBytes);
                Assert.All(model.parameters(), p => Assert.Equal(DeviceType.CPU, p.device_type));
                // A one-rank group keeps the model as built, with every compute path.
                Assert.All(model.RoutedExperts, e => Assert.Equal(ranks > 1, e.IsSharded));
            }
        }
    }

    [Fact]
    public void The_pass_runs_only_on_a_built_model_and_only_once()
    {
        var config = DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny));
        var placement = ExpertPlacement.Initial(config, 2, 0);
        var transport = new InProcessExpertGroup(2).TransportFor(0);
        using (var loaded = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.Float32, CPU))
            Assert.Throws<InvalidOperationException>(() => ExpertParallelism.Apply(loaded, placement, 0, transport));
        using var built = DeepSeekForCausalLM.Build(config, ScalarType.Float32);
        ExpertParallelism.Apply(built, placement, 0, transport);
        Assert.Throws<InvalidOperationException>(() => ExpertParallelism.Apply(built, placement, 0, transport));
        using (var outside = DeepSeekForCausalLM.Build(config, ScalarType.Float32))
            Assert.Throws<ArgumentOutOfRangeException>(() => ExpertParallelism.Apply(outside, placement, 2, transport));
        var wrongLayers = new ExpertPlacement(2, [new LayerPlacement(0, 8, [[0, 1, 2, 3], [4, 5, 6, 7]])]);
        using var other = DeepSeekForCausalLM.Build(config, ScalarType.Float32);
        Assert.Throws<ArgumentException>(() => ExpertParallelism.Apply(other, wrongLayers, 0, transport));
        var missingLayer = placement with { Layers = [placement.Layers[0]] };
        Assert.Throws<ArgumentException>(() => ExpertParallelism.Apply(other, missingLayer, 0, transport));
        Assert.All(other.RoutedExperts, e => Assert.False(e.IsSharded));
    }

    [Fact]
    public void A_rank_refuses_tokens_of_an_expert_it_does_not_hold()
    {
        using var group = ShardedGroup.Load(Fixtures.V3Tiny, ExpertPlacement.Initial(DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny)), 2, 0), ScalarType.Float32);
        var experts = group.Ranks[1].RoutedExperts[0];
        var foreign = Enumerable.Range(0, 8).First(e => !experts.HeldExperts.Contains(e));
        using var scope = NewDisposeScope();
        var batch = new ExpertBatch(1, randn([2, 64]), tensor(new long[] { foreign, -1, experts.HeldExperts[0], -1 }).view(2, 2), ones([2, 2]));
        var error = Assert.Throws<InvalidOperationException>(() => ExpertParallelism.ComputeHeld(experts, batch));
        Assert.Contains("does not hold", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_peer_answer_of_the_wrong_shape_is_an_error_naming_the_peer()
    {
        var directory = Fixtures.Dir(Fixtures.V3Tiny);
        var config = DeepSeekConfig.Load(directory);
        using var checkpoint = SafetensorsCheckpoint.Open(directory);
        using var model = DeepSeekForCausalLM.Build(config, ScalarType.Float32);
        ExpertParallelism.Apply(model, ExpertPlacement.Initial(config, 2, 0), 0, new OneRowTooManyTransport());
        model.Materialise(checkpoint, CPU);
        var prompt = Fixtures.LoadReference(Fixtures.V3Tiny).Prompts[0].InputIds;
        using var cache = model.CreateCache(prompt.Length);

        var error = Assert.Throws<ExpertTransportException>(() => model.Forward(ForwardBatch.Contiguous(prompt, 0), cache));
        Assert.Contains("rank 1 answered", error.Message, StringComparison.Ordinal);
    }

    private sealed class OneRowTooManyTransport : IExpertTransport
    {
        public IExpertCombine Dispatch(int layerIndex, long placementVersion, IReadOnlyList<ExpertBatch> batches) =>
            new Answers([.. batches.Select(b => zeros(b.Hidden.shape[0] + 1, b.Hidden.shape[1]))]);

        private sealed class Answers(IReadOnlyList<Tensor> results) : IExpertCombine
        {
            public IReadOnlyList<Tensor> Combine() => results;
        }
    }

    [GeneratedRegex(@"^model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.")]
    private static partial Regex ExpertTensor();

    [GeneratedRegex(@"^model\.layers\.(\d+)\.")]
    private static partial Regex LayerTensor();

    private static bool IsRunLayer(string name, DeepSeekConfig config) =>
        LayerTensor().Match(name) is not { Success: true } m || int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) < config.NumHiddenLayers;

    private static bool HeldHere(string name, ExpertPlacement placement, int rank)
    {
        var m = ExpertTensor().Match(name);
        if (!m.Success) return true;
        var layer = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var expert = int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        return placement.Layer(layer).ExpertsOn(rank).Contains(expert);
    }
}
