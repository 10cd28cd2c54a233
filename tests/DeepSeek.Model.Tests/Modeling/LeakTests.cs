using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Modeling;

/// <summary>Tensor.TotalCount is process-wide, so this runs with no other test in parallel.</summary>
[Collection(nameof(LeakTests))]
public sealed class LeakTests
{
    [Fact]
    public void Repeated_generation_leaves_live_tensor_count_flat()
    {
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.Float32, CPU);
        AssertFlat(model);
    }

    [Fact]
    public void Repeated_generation_on_a_sharded_group_leaves_live_tensor_count_flat()
    {
        var config = DeepSeek.Model.Configuration.DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny));
        using var group = ShardedGroup.Load(Fixtures.V3Tiny, DeepSeek.Model.Parallelism.ExpertPlacement.Initial(config, 3, 2), ScalarType.Float32);
        AssertFlat(group.Leader);
    }

    [Fact]
    public void Repeated_generation_with_int4_weights_leaves_live_tensor_count_flat()
    {
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.BFloat16, CPU,
            quantization: DeepSeek.Model.Quantization.WeightQuantization.Int4(16));
        AssertFlat(model);
    }

    private static void AssertFlat(DeepSeekForCausalLM model)
    {
        var prompt = Fixtures.LoadReference(Fixtures.V3Tiny).Prompts[2].InputIds;
        void Run() => GreedyDecoding.Cached(model, prompt, 12);

        Run();
        // Finalizers of tensors other tests left to the GC would move the process-wide count.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var liveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var totalBefore = Tensor.TotalCount;
        for (var i = 0; i < 10; i++) Run();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(liveBefore, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        Assert.Equal(totalBefore, Tensor.TotalCount);
    }
}
