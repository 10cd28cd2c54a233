using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Experts;

/// <summary>
/// The three routed-expert paths against the per-token sum computed straight from the checkpoint's
/// per-expert tensors (so the stacking at load is checked too), and against each other in a whole model.
/// </summary>
public sealed class RoutedExpertPathTests
{
    private const int Layer = 1;

    public static TheoryData<ExpertComputePath, int> PathsAndTokenCounts()
    {
        var data = new TheoryData<ExpertComputePath, int>();
        foreach (var path in Enum.GetValues<ExpertComputePath>())
            foreach (var tokens in new[] { 1, 3, 9, 33 })
                data.Add(path, tokens);
        return data;
    }

    [Theory]
    [MemberData(nameof(PathsAndTokenCounts))]
    public void Each_path_equals_the_per_token_expert_sum(ExpertComputePath path, int tokens)
    {
        var directory = Fixtures.Dir(Fixtures.V3Tiny);
        using var model = DeepSeekForCausalLM.Load(directory, ScalarType.Float64, CPU);
        using var checkpoint = SafetensorsCheckpoint.Open(directory);
        var moe = model.MoeLayers.Single(m => m.LayerIndex == Layer);
        var dispatcher = new LocalExpertDispatcher(moe.LocalExperts, model.Config.NRoutedExperts, model.Config.NumExpertsPerTok, ExpertDeviceProfile.Cpu)
        {
            Thresholds = ExpertPathThresholds.Only(path),
        };
        Assert.Equal(path, dispatcher.PathFor(tokens));

        using var scope = NewDisposeScope();
        int experts = model.Config.NRoutedExperts, topK = model.Config.NumExpertsPerTok;
        var hidden = randn([tokens, model.Config.HiddenSize], ScalarType.Float64, generator: new Generator(5));
        var ids = randint(experts, [tokens, topK], ScalarType.Int64, generator: new Generator((ulong)(7 + tokens)));
        ids[0, 1] = ids[0, 0].clone(); // one token names the same expert in two slots: both weights count
        var weights = rand([tokens, topK], ScalarType.Float64, generator: new Generator(6));
        var flat = ids.reshape(-1);
        var counts = zeros([experts], ScalarType.Int64).scatter_add_(0, flat, ones_like(flat));

        var dispatched = dispatcher.Dispatch(new RoutedTokens(Layer, hidden, ids, weights, counts));

        Assert.Equal(new long[] { tokens, model.Config.HiddenSize }, dispatched.shape);
        var idRows = ids.data<long>().ToArray();
        for (var t = 0; t < tokens; t++)
        {
            var expected = zeros([model.Config.HiddenSize], ScalarType.Float64);
            for (var k = 0; k < topK; k++)
                expected += ReferenceExpert(checkpoint, (int)idRows[(t * topK) + k], hidden[t]) * weights[t, k];
            var difference = (dispatched[t] - expected).abs().max().item<double>();
            Assert.True(difference < 1e-12, $"{path}, {tokens} tokens: token {t} differs by {difference}");
        }
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
        var moe = model.MoeLayers.Single(m => m.LayerIndex == Layer);
        var dispatcher = new LocalExpertDispatcher(moe.LocalExperts, model.Config.NRoutedExperts, model.Config.NumExpertsPerTok, ExpertDeviceProfile.Cpu)
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
        var before = dispatcher.Dispatch(new RoutedTokens(Layer, hidden, ids, weights, counts)).clone();

        using (no_grad())
            moe.LocalExperts.Down[unpicked].fill_(float.PositiveInfinity);
        var after = dispatcher.Dispatch(new RoutedTokens(Layer, hidden, ids, weights, counts));

        Assert.True(after.isfinite().all().item<bool>(), "an unpicked expert's overflow reached the output");
        Assert.True(after.eq(before).all().item<bool>(), "zeroing an unpicked expert changed the output");
    }

    [Theory]
    [InlineData(ExpertComputePath.Gather)]
    [InlineData(ExpertComputePath.Dense)]
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
    public void Cost_model_gathers_small_decode_batches_and_goes_dense_up_to_the_temporaries_cap_on_a_gpu()
    {
        // DeepSeek-V2-Lite in bf16: 64 experts, 6 per token, hidden 2048, moe_intermediate 1408.
        var v2Lite = new MoeShape(64, 6, 2048, 1408, 2);
        var gpu = ExpertCostModel.Thresholds(v2Lite, ExpertDeviceProfile.Cuda);
        Assert.Equal(new ExpertPathThresholds(3, 334), gpu);
        Assert.Equal(ExpertComputePath.Gather, gpu.Choose(1));
        Assert.Equal(ExpertComputePath.Dense, gpu.Choose(8));
        Assert.Equal(ExpertComputePath.Dense, gpu.Choose(64));
        Assert.Equal(ExpertComputePath.Sorted, gpu.Choose(2048));
        // The dense cap is where its temporaries outgrow the profile's limit.
        Assert.True(ExpertCostModel.DenseTemporaryBytes(gpu.MaxDenseTokens, v2Lite) <= ExpertDeviceProfile.Cuda.MaxDenseTemporaryBytes);
        Assert.True(ExpertCostModel.DenseTemporaryBytes(gpu.MaxDenseTokens + 1, v2Lite) > ExpertDeviceProfile.Cuda.MaxDenseTemporaryBytes);

        // On a CPU a matmul is memory-bound and a "synchronisation" free: only the chosen experts are read.
        var cpu = ExpertCostModel.Thresholds(v2Lite with { ElementSize = 4 }, ExpertDeviceProfile.Cpu);
        Assert.Equal(ExpertComputePath.Sorted, cpu.Choose(1));
        Assert.Equal(ExpertComputePath.Sorted, cpu.Choose(64));
    }

    [Fact]
    public void Cost_model_prefers_the_path_with_fewer_bytes_when_launches_are_free()
    {
        var shape = new MoeShape(64, 6, 2048, 1408, 2);
        var bandwidthOnly = new ExpertDeviceProfile(1e12, 1e18, 1e18, 0, 0, long.MaxValue);
        // Gather reads 3·6 experts for one token, Dense all 64, Sorted the 6 chosen.
        Assert.True(ExpertCostModel.Seconds(ExpertComputePath.Sorted, 1, shape, bandwidthOnly) < ExpertCostModel.Seconds(ExpertComputePath.Gather, 1, shape, bandwidthOnly));
        Assert.True(ExpertCostModel.Seconds(ExpertComputePath.Gather, 1, shape, bandwidthOnly) < ExpertCostModel.Seconds(ExpertComputePath.Dense, 1, shape, bandwidthOnly));
        Assert.Equal(ExpertComputePath.Sorted, ExpertCostModel.Thresholds(shape, bandwidthOnly).Choose(1));
    }

    [Fact]
    public void A_rank_with_some_experts_always_takes_the_sorted_path()
    {
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.Float32, CPU, ExpertPlacement.Contiguous(8, 2), rank: 1);
        var dispatcher = Assert.IsType<LocalExpertDispatcher>(model.MoeLayers.First().Dispatcher);
        dispatcher.Thresholds = ExpertPathThresholds.Only(ExpertComputePath.Dense);
        Assert.Equal(ExpertComputePath.Sorted, dispatcher.PathFor(4));
    }

    private static void SetPath(DeepSeekForCausalLM model, ExpertComputePath path)
    {
        foreach (var moe in model.MoeLayers)
            Assert.IsType<LocalExpertDispatcher>(moe.Dispatcher).Thresholds = ExpertPathThresholds.Only(path);
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
