using DeepSeek.Model.Generation;
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
        var generator = new SequenceGenerator(model);
        var prompt = Fixtures.LoadReference(Fixtures.V3Tiny).Prompts[2].InputIds;
        void Run(int seed) => generator.Generate(prompt, 12, new SamplingOptions(0.7, 0.9, 50, seed), logprobs: 3);

        Run(0);
        var liveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var totalBefore = Tensor.TotalCount;
        for (var i = 1; i <= 10; i++) Run(i);
        Assert.Equal(liveBefore, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        Assert.Equal(totalBefore, Tensor.TotalCount);
    }
}

[CollectionDefinition(nameof(LeakTests), DisableParallelization = true)]
public sealed class LeakTestsCollection;
