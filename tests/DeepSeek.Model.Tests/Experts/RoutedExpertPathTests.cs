using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;
using DeepSeek.Model.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Experts;

/// <summary>
/// The routed-expert paths that run on the CPU (Sorted, and the grouped GEMM through its reference)
/// against the per-token sum computed straight from the checkpoint's per-expert tensors (so the
/// stacking at load is checked too), and against each other in a whole model.
/// </summary>
public sealed class RoutedExpertPathTests
{
    private const int Layer = 1;

    /// <summary>Routed experts and experts per token of the V3 tiny fixture.</summary>
    private const int Experts = 8, TopK = 2;

    public static TheoryData<ExpertComputePath, int> PathsAndTokenCounts()
    {
        var data = new TheoryData<ExpertComputePath, int>();
        // Int4Fused and Fp8Fused are quantised experts' paths on CUDA alone, through the native helper's kernels
        // (bench native --sections grouped-mm,fp8 checks them on the GPU against these sums' form).
        foreach (var path in Enum.GetValues<ExpertComputePath>().Where(p => p is not (ExpertComputePath.Int4Fused or ExpertComputePath.Fp8Fused)))
            foreach (var tokens in new[] { 1, 3, 9, 33 })
                data.Add(path, tokens);
        return data;
    }

    [Theory]
    [MemberData(nameof(PathsAndTokenCounts))]
    public void Each_path_equals_the_per_token_expert_sum(ExpertComputePath path, int tokens)
    {
        using var scope = NewDisposeScope();
        var ids = randint(Experts, [tokens, TopK], ScalarType.Int64, generator: new Generator((ulong)(7 + tokens)));
        ids[0, 1] = ids[0, 0].clone(); // one token names the same expert in two slots: both weights count
        AssertPathEqualsReference(path, ids);
    }

    /// <summary>
    /// Skewed routing: one expert gets most pairs, so most experts get none and one group is most
    /// of the rows; every path still gives the exact sum.
    /// </summary>
    [Theory]
    [InlineData(ExpertComputePath.Sorted)]
    [InlineData(ExpertComputePath.GroupedGemm)]
    public void Each_path_equals_the_per_token_expert_sum_when_one_expert_gets_most_pairs(ExpertComputePath path)
    {
        using var scope = NewDisposeScope();
        const int tokens = 33, favourite = 5;
        var ids = randint(Experts, [tokens, TopK], ScalarType.Int64, generator: new Generator(21));
        using var favouriteId = favourite.ToScalar();
        ids[.., 0].fill_(favouriteId); // every token's first slot …
        ids.narrow(0, 0, 20)[.., 1].fill_(favouriteId); // … and most tokens' second slot: same expert twice
        var counts = Counts(ids).data<long>().ToArray();
        Assert.True(counts[favourite] > counts.Sum() / 2, "the routing is not skewed");
        AssertPathEqualsReference(path, ids);
    }

    /// <summary>Runs <paramref name="path"/> on random states routed to <paramref name="ids"/> and compares every token with the float64 reference.</summary>
    private static void AssertPathEqualsReference(ExpertComputePath path, Tensor ids)
    {
        var directory = Fixtures.Dir(Fixtures.V3Tiny);
        using var model = DeepSeekForCausalLM.Load(directory, ScalarType.Float64, CPU);
        using var checkpoint = SafetensorsCheckpoint.Open(directory);
        Assert.Equal((Experts, TopK), (model.Config.NRoutedExperts, model.Config.NumExpertsPerTok));
        var experts = model.RoutedExperts.Single(m => m.LayerIndex == Layer);
        var local = new LocalExperts(experts, path);
        var tokens = ids.shape[0];
        var counts = Counts(ids);
        Assert.Equal(path, local.Path);

        var hidden = randn([tokens, model.Config.HiddenSize], ScalarType.Float64, generator: new Generator(5));
        var weights = rand([tokens, TopK], ScalarType.Float64, generator: new Generator(6));

        var dispatched = local.Compute(new RoutedTokens(Layer, hidden, ids, weights, counts));

        Assert.Equal(new long[] { tokens, model.Config.HiddenSize }, dispatched.shape);
        var idRows = ids.data<long>().ToArray();
        for (var t = 0; t < tokens; t++)
        {
            var expected = zeros([model.Config.HiddenSize], ScalarType.Float64);
            for (var k = 0; k < TopK; k++)
                expected = expected.Plus(ReferenceExpert(checkpoint, (int)idRows[(t * TopK) + k], hidden[t]) * weights[t, k]);
            var difference = (dispatched[t] - expected).abs().max().item<double>();
            Assert.True(difference < 1e-12, $"{path}, {tokens} tokens: token {t} differs by {difference}");
        }
    }

    private static Tensor Counts(Tensor ids)
    {
        var flat = ids.reshape(-1);
        return zeros([Experts], ScalarType.Int64).scatter_add_(0, flat, ones_like(flat));
    }

    [Theory]
    [InlineData(ExpertComputePath.GroupedGemm)]
    public void Whole_model_gives_the_same_logits_and_loads_on_every_path(ExpertComputePath path)
    {
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V2LiteTiny), ScalarType.Float64, CPU);
        var prompt = Fixtures.LoadReference(Fixtures.V2LiteTiny).Prompts[0].InputIds;
        ForwardOutput Run()
        {
            using var cache = model.CreateCache(prompt.Length);
            using (model.Forward(ForwardBatch.Contiguous(prompt[..^1], 0), cache)) { }
            return model.Forward(ForwardBatch.Contiguous([prompt[^1]], prompt.Length - 1), cache);
        }

        SetPath(model, ExpertComputePath.Sorted);
        using var sorted = Run();
        SetPath(model, path);
        using var other = Run();

        Assert.True((sorted.Logits - other.Logits).abs().max().item<double>() < 1e-10);
        Assert.NotEmpty(other.ExpertLoads);
        Assert.Equal(sorted.ExpertLoads.Select(l => l.LayerIndex), other.ExpertLoads.Select(l => l.LayerIndex));
        Assert.All(sorted.ExpertLoads.Zip(other.ExpertLoads), pair => Assert.Equal(pair.First.TokensPerExpert, pair.Second.TokensPerExpert));
        Assert.All(other.ExpertLoads, load => Assert.Equal(model.Config.NumExpertsPerTok, load.TokensPerExpert.Sum()));
    }

    [Fact]
    public void A_rank_with_some_experts_takes_the_sorted_path_on_the_CPU_and_no_graph_over_a_transport_that_reads_back()
    {
        var directory = Fixtures.Dir(Fixtures.V3Tiny);
        var config = DeepSeekConfig.Load(directory);
        using var checkpoint = SafetensorsCheckpoint.Open(directory);
        using var model = DeepSeekForCausalLM.Build(config, ScalarType.Float32);
        ExpertParallelism.Apply(model, ExpertPlacement.Initial(config, 2, 0), 1, new InProcessExpertGroup(2).TransportFor(1));
        model.Materialise(checkpoint, CPU);
        Assert.All(model.RoutedExperts, experts => Assert.Equal(ExpertComputePath.Sorted, experts.Local.Path));
        Assert.All(model.RoutedExperts, experts => Assert.Equal(0, experts.SyncFreeTokens));
    }

    [Fact]
    public void A_shard_on_the_grouped_GEMM_skips_the_picks_held_elsewhere_as_the_sorted_path_does()
    {
        var config = DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny));
        var placement = ExpertPlacement.Initial(config, 2, 0);
        using var group = ShardedGroup.Load(Fixtures.V3Tiny, placement, ScalarType.Float64);
        var experts = group.Ranks[1].RoutedExperts[0];
        var held = placement.Layer(experts.LayerIndex).ExpertsOn(1);
        using var scope = NewDisposeScope();
        var generator = new Generator(7);
        const int tokens = 12;
        var k = config.NumExpertsPerTok;
        var hidden = randn([tokens, config.HiddenSize], ScalarType.Float64, generator: generator);
        // Picks of held experts, and −1 (another rank's) at every third place: their rows sort past every group.
        var ids = tensor(Enumerable.Range(0, tokens * k).Select(i => i % 3 == 0 ? -1L : held[i % held.Count]).ToArray(), [tokens, k]);
        var weights = rand([tokens, k], ScalarType.Float64, generator: generator).masked_fill(ids.eq(HeldScalars.MinusOne), HeldScalars.ZeroReal);
        var batch = new ExpertBatch(0, hidden, ids, weights);

        experts.Local = new LocalExperts(experts, ExpertComputePath.Sorted);
        var sorted = ExpertParallelism.ComputeHeld(experts, batch);
        experts.Local = new LocalExperts(experts, ExpertComputePath.GroupedGemm);
        var grouped = ExpertParallelism.ComputeHeld(experts, batch);

        Assert.False(grouped.isnan().any().item<bool>(), "rows of picks held elsewhere leaked into the sum");
        Assert.True(grouped.allclose(sorted, rtol: 1e-12, atol: 1e-12));
        Assert.True(sorted.abs().sum().item<double>() > 0);
    }

    private static void SetPath(DeepSeekForCausalLM model, ExpertComputePath path)
    {
        foreach (var experts in model.RoutedExperts)
            experts.Local = new LocalExperts(experts, path);
    }

    /// <summary><c>down(silu(gate(x)) · up(x))</c> from the checkpoint's own tensors of one expert.</summary>
    private static Tensor ReferenceExpert(SafetensorsCheckpoint checkpoint, int expert, Tensor x)
    {
        Tensor Weight(string matrix)
        {
            var name = $"model.layers.{Layer}.mlp.experts.{expert}.{matrix}.weight";
            return checkpoint.Load(name, checkpoint.Info(name).Shape, ScalarType.Float64, CPU);
        }
        var gate = Weight("gate_proj").matmul(x);
        var up = Weight("up_proj").matmul(x);
        return Weight("down_proj").matmul(nn.functional.silu(gate) * up);
    }
}
