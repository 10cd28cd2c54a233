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
/// The four routed-expert paths against the per-token sum computed straight from the checkpoint's
/// per-expert tensors (so the stacking at load is checked too), and against each other in a whole model.
/// </summary>
public sealed class RoutedExpertPathTests
{
    private const int Layer = 1;

    /// <summary>Routed experts and experts per token of the V3 tiny fixture.</summary>
    private const int Experts = 8, TopK = 2;

    public static TheoryData<ExpertComputePath, int> PathsAndTokenCounts()
    {
        var data = new TheoryData<ExpertComputePath, int>();
        // Int4Fused is int4 experts' path on CUDA alone (the GPU bench checks it against these sums' form).
        foreach (var path in Enum.GetValues<ExpertComputePath>().Where(p => p != ExpertComputePath.Int4Fused))
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
        AssertPathEqualsReference(path, ids, ExpertDeviceProfile.Cpu);
    }

    /// <summary>
    /// Skewed routing: one expert gets most pairs, so the grouped path's capacity is far above the
    /// mean and most of its padded rows are empty; every path still gives the exact sum.
    /// </summary>
    [Theory]
    [InlineData(ExpertComputePath.Gather)]
    [InlineData(ExpertComputePath.Dense)]
    [InlineData(ExpertComputePath.Sorted)]
    [InlineData(ExpertComputePath.Grouped)]
    public void Each_path_equals_the_per_token_expert_sum_when_one_expert_gets_most_pairs(ExpertComputePath path)
    {
        using var scope = NewDisposeScope();
        const int tokens = 33, favourite = 5;
        var ids = randint(Experts, [tokens, TopK], ScalarType.Int64, generator: new Generator(21));
        ids[.., 0] = favourite; // every token's first slot …
        ids.narrow(0, 0, 20)[.., 1] = favourite; // … and most tokens' second slot: same expert twice
        var counts = Counts(ids).data<long>().ToArray();
        Assert.True(counts[favourite] > counts.Sum() / 2, "the routing is not skewed");
        AssertPathEqualsReference(path, ids, ExpertDeviceProfile.Cpu);
    }

    /// <summary>With a temporaries cap below one expert's padded rows the grouped path runs one expert at a time.</summary>
    [Fact]
    public void Grouped_path_in_expert_chunks_equals_the_per_token_expert_sum()
    {
        using var scope = NewDisposeScope();
        var ids = randint(Experts, [33, TopK], ScalarType.Int64, generator: new Generator(31));
        var tinyCap = ExpertDeviceProfile.Cpu with { MaxGroupedTemporaryBytes = 1 };
        var shape = new MoeShape(Experts, TopK, 1, 1, 8);
        Assert.Equal(1, ExpertCostModel.GroupedChunkExperts(ExpertCostModel.GroupedCapacity(Counts(ids).max().item<long>()), shape, tinyCap));
        AssertPathEqualsReference(ExpertComputePath.Grouped, ids, tinyCap);
    }

    /// <summary>Runs <paramref name="path"/> on random states routed to <paramref name="ids"/> and compares every token with the float64 reference.</summary>
    private static void AssertPathEqualsReference(ExpertComputePath path, Tensor ids, ExpertDeviceProfile device)
    {
        var directory = Fixtures.Dir(Fixtures.V3Tiny);
        using var model = DeepSeekForCausalLM.Load(directory, ScalarType.Float64, CPU);
        using var checkpoint = SafetensorsCheckpoint.Open(directory);
        Assert.Equal((Experts, TopK), (model.Config.NRoutedExperts, model.Config.NumExpertsPerTok));
        var experts = model.RoutedExperts.Single(m => m.LayerIndex == Layer);
        var local = new LocalExperts(experts, device)
        {
            Thresholds = ExpertPathThresholds.Only(path),
        };
        var tokens = ids.shape[0];
        var counts = Counts(ids);
        Assert.Equal(path, local.PathFor(tokens) ?? local.LargeBatchPathFor(counts.data<long>().ToArray()));

        var hidden = randn([tokens, model.Config.HiddenSize], ScalarType.Float64, generator: new Generator(5));
        var weights = rand([tokens, TopK], ScalarType.Float64, generator: new Generator(6));

        var dispatched = local.Compute(new RoutedTokens(Layer, hidden, ids, weights, counts));

        Assert.Equal(new long[] { tokens, model.Config.HiddenSize }, dispatched.shape);
        var idRows = ids.data<long>().ToArray();
        for (var t = 0; t < tokens; t++)
        {
            var expected = zeros([model.Config.HiddenSize], ScalarType.Float64);
            for (var k = 0; k < TopK; k++)
                expected += ReferenceExpert(checkpoint, (int)idRows[(t * TopK) + k], hidden[t]) * weights[t, k];
            var difference = (dispatched[t] - expected).abs().max().item<double>();
            Assert.True(difference < 1e-12, $"{path}, {tokens} tokens: token {t} differs by {difference}");
        }
    }

    private static Tensor Counts(Tensor ids)
    {
        var flat = ids.reshape(-1);
        return zeros([Experts], ScalarType.Int64).scatter_add_(0, flat, ones_like(flat));
    }

    /// <summary>
    /// The dense path runs every expert on every token; an expert nobody picked that overflows must
    /// not turn the result into NaN (0 × inf), nor change it.
    /// </summary>
    [Fact]
    public void Dense_path_ignores_an_unpicked_expert_that_overflows()
    {
        var directory = Fixtures.Dir(Fixtures.V3Tiny);
        using var model = DeepSeekForCausalLM.Load(directory, ScalarType.Float32, CPU);
        var routed = model.RoutedExperts.Single(m => m.LayerIndex == Layer);
        var local = new LocalExperts(routed, ExpertDeviceProfile.Cpu)
        {
            Thresholds = ExpertPathThresholds.Only(ExpertComputePath.Dense),
        };
        using var scope = NewDisposeScope();
        int experts = model.Config.NRoutedExperts, topK = model.Config.NumExpertsPerTok, tokens = 9;
        const int unpicked = 3;
        var hidden = randn([tokens, model.Config.HiddenSize], generator: new Generator(11));
        var raw = randint(experts - 1, [tokens, topK], ScalarType.Int64, generator: new Generator(12));
        var ids = raw + raw.ge(unpicked).to(ScalarType.Int64); // every expert but the unpicked one
        var weights = rand([tokens, topK], generator: new Generator(13));
        var flat = ids.reshape(-1);
        var counts = zeros([experts], ScalarType.Int64).scatter_add_(0, flat, ones_like(flat));
        var before = local.Compute(new RoutedTokens(Layer, hidden, ids, weights, counts)).clone();

        using (no_grad())
            routed.Down[unpicked].fill_(float.PositiveInfinity);
        var after = local.Compute(new RoutedTokens(Layer, hidden, ids, weights, counts));

        Assert.True(after.isfinite().all().item<bool>(), "an unpicked expert's overflow reached the output");
        Assert.True(after.eq(before).all().item<bool>(), "zeroing an unpicked expert changed the output");
    }

    [Theory]
    [InlineData(ExpertComputePath.Gather)]
    [InlineData(ExpertComputePath.Dense)]
    [InlineData(ExpertComputePath.Grouped)]
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
    public void Cost_model_gathers_small_decode_batches_and_goes_dense_until_grouped_is_cheaper_on_a_gpu()
    {
        // DeepSeek-V2-Lite in bf16: 64 experts, 6 per token, hidden 2048, moe_intermediate 1408.
        var v2Lite = new MoeShape(64, 6, 2048, 1408, 2);
        var gpu = ExpertCostModel.Thresholds(v2Lite, ExpertDeviceProfile.Cuda);
        Assert.Equal(new ExpertPathThresholds(3, 225), gpu);
        Assert.Equal(ExpertComputePath.Gather, gpu.Choose(1));
        Assert.Equal(ExpertComputePath.Dense, gpu.Choose(8));
        Assert.Equal(ExpertComputePath.Dense, gpu.Choose(64));
        Assert.Null(gpu.Choose(2048)); // large batch: Sorted or Grouped from the counts
        // Dense stops where uniformly routed Grouped (capacity ≈ 1.5 × the mean) becomes cheaper, before its temporaries cap.
        Assert.True(ExpertCostModel.DenseTemporaryBytes(gpu.MaxDenseTokens + 1, v2Lite) <= ExpertDeviceProfile.Cuda.MaxDenseTemporaryBytes);
        Assert.True(ExpertCostModel.Seconds(ExpertComputePath.Grouped, gpu.MaxDenseTokens + 1, v2Lite, ExpertDeviceProfile.Cuda)
                    < ExpertCostModel.Seconds(ExpertComputePath.Dense, gpu.MaxDenseTokens + 1, v2Lite, ExpertDeviceProfile.Cuda));

        // Prefill of 2,048 and 8,192 balanced tokens: Grouped (one expert chunk, then two); one
        // expert taking a third of 2,048 tokens' pairs makes the padding cost more than Sorted's launches.
        Assert.Equal(ExpertComputePath.Grouped, ExpertCostModel.LargeBatchPath(Balanced(2048 * 6, 64), v2Lite, ExpertDeviceProfile.Cuda));
        Assert.Equal(ExpertComputePath.Grouped, ExpertCostModel.LargeBatchPath(Balanced(8192 * 6, 64), v2Lite, ExpertDeviceProfile.Cuda));
        Assert.Equal(64, ExpertCostModel.GroupedChunkExperts(ExpertCostModel.GroupedCapacity(2048 * 6 / 64), v2Lite, ExpertDeviceProfile.Cuda));
        Assert.Equal(42, ExpertCostModel.GroupedChunkExperts(ExpertCostModel.GroupedCapacity(8192 * 6 / 64), v2Lite, ExpertDeviceProfile.Cuda));
        var skewed = Balanced((2048 * 6) - 4096, 64);
        skewed[0] += 4096;
        Assert.Equal(ExpertComputePath.Sorted, ExpertCostModel.LargeBatchPath(skewed, v2Lite, ExpertDeviceProfile.Cuda));

        // On a CPU a matmul is memory-bound and a "synchronisation" free: only the chosen experts are
        // read, and Grouped's padded rows are extra FLOPs.
        var cpuShape = v2Lite with { ElementSize = 4 };
        var cpu = ExpertCostModel.Thresholds(cpuShape, ExpertDeviceProfile.Cpu);
        Assert.Null(cpu.Choose(1));
        Assert.Equal(ExpertComputePath.Sorted, ExpertCostModel.LargeBatchPath(Balanced(6, 64), cpuShape, ExpertDeviceProfile.Cpu));
        var nearlyBalanced = Balanced(2048 * 6, 64);
        (nearlyBalanced[0], nearlyBalanced[1]) = (nearlyBalanced[0] + 16, nearlyBalanced[1] - 16);
        Assert.Equal(ExpertComputePath.Sorted, ExpertCostModel.LargeBatchPath(nearlyBalanced, cpuShape, ExpertDeviceProfile.Cpu));
    }

    [Fact]
    public void Cost_model_prefers_the_path_with_fewer_bytes_when_launches_are_free()
    {
        var shape = new MoeShape(64, 6, 2048, 1408, 2);
        var bandwidthOnly = new ExpertDeviceProfile(1e12, 1e18, 1e18, 0, 0, long.MaxValue);
        // Gather reads 3·6 experts for one token, Dense and Grouped all 64, Sorted the 6 chosen.
        Assert.True(ExpertCostModel.Seconds(ExpertComputePath.Sorted, 1, shape, bandwidthOnly) < ExpertCostModel.Seconds(ExpertComputePath.Gather, 1, shape, bandwidthOnly));
        Assert.True(ExpertCostModel.Seconds(ExpertComputePath.Gather, 1, shape, bandwidthOnly) < ExpertCostModel.Seconds(ExpertComputePath.Dense, 1, shape, bandwidthOnly));
        Assert.True(ExpertCostModel.Seconds(ExpertComputePath.Gather, 1, shape, bandwidthOnly) < ExpertCostModel.Seconds(ExpertComputePath.Grouped, 1, shape, bandwidthOnly));
        Assert.Null(ExpertCostModel.Thresholds(shape, bandwidthOnly).Choose(1));
        Assert.Equal(ExpertComputePath.Sorted, ExpertCostModel.LargeBatchPath(Balanced(6, 64), shape, bandwidthOnly));
    }

    [Fact]
    public void Grouped_capacity_is_the_largest_count_rounded_up_to_sixteen()
    {
        Assert.Equal(0, ExpertCostModel.GroupedCapacity(0));
        Assert.Equal(16, ExpertCostModel.GroupedCapacity(1));
        Assert.Equal(16, ExpertCostModel.GroupedCapacity(16));
        Assert.Equal(208, ExpertCostModel.GroupedCapacity(193));
    }

    [Fact]
    public void A_rank_with_some_experts_always_takes_the_sorted_path()
    {
        var directory = Fixtures.Dir(Fixtures.V3Tiny);
        var config = DeepSeekConfig.Load(directory);
        using var checkpoint = SafetensorsCheckpoint.Open(directory);
        using var model = DeepSeekForCausalLM.Build(config, ScalarType.Float32);
        ExpertParallelism.Apply(model, ExpertPlacement.Initial(config, 2, 0), 1, new InProcessExpertGroup(2).TransportFor(1));
        model.Materialise(checkpoint, CPU);
        var local = model.RoutedExperts[0].Local;
        local.Thresholds = ExpertPathThresholds.Only(ExpertComputePath.Dense);
        Assert.Equal(ExpertComputePath.Sorted, local.PathFor(4));
        local.Thresholds = ExpertPathThresholds.Only(ExpertComputePath.Grouped);
        Assert.Equal(ExpertComputePath.Sorted, local.PathFor(4));
        Assert.Equal(ExpertComputePath.Sorted, local.LargeBatchPathFor([1, 2, 3, 4]));
    }

    /// <summary><paramref name="pairs"/> spread as evenly as possible over <paramref name="experts"/> experts.</summary>
    private static long[] Balanced(long pairs, int experts) =>
        [.. Enumerable.Range(0, experts).Select(e => (pairs / experts) + (e < pairs % experts ? 1 : 0))];

    private static void SetPath(DeepSeekForCausalLM model, ExpertComputePath path)
    {
        foreach (var experts in model.RoutedExperts)
            experts.Local.Thresholds = ExpertPathThresholds.Only(path);
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
