using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Modeling;

/// <summary>
/// YaRN against transformers on the example-v3-yarn checkpoint (made on a GPU host with PyTorch and
/// transformers 5.17; see tests/fixtures/README.md), in float64 so greedy tokens must match exactly.
/// </summary>
public sealed class YarnReferenceTests
{
    [Fact]
    public void Yarn_checkpoint_matches_reference()
    {
        var reference = Fixtures.LoadReference(Fixtures.V3Yarn);
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Yarn), ScalarType.Float64, CPU);
        Assert.True(model.Config.Rope.IsYarn);
        foreach (var prompt in reference.Prompts)
        {
            using var cache = model.CreateCache(prompt.InputIds.Length);
            using var output = model.Forward(ForwardBatch.Contiguous(prompt.InputIds, 0), cache);
            var last = output.Logits[-1].data<double>().ToArray();
            for (var v = 0; v < last.Length; v++)
                Assert.True(Math.Abs(last[v] - prompt.LastLogits[v]) <= 1e-4, $"logit {v}: {last[v]} vs {prompt.LastLogits[v]}");
            Assert.Equal(prompt.Greedy, GreedyDecoding.Cached(model, prompt.InputIds, prompt.Greedy.Length));
        }
    }
}
