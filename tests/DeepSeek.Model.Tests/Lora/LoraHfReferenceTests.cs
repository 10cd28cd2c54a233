using DeepSeek.Model.Lora;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Lora;

/// <summary>
/// The adapters of <c>scripts/gpu/make_lora_fixture.py</c> against HF transformers on merged weights
/// (<c>tests/fixtures/&lt;base&gt;-lora/&lt;adapter&gt;/reference.json</c>), applied through the runtime's
/// adapter slots in float64: last-position logits within 1e-6 and identical greedy tokens. The other
/// reference, a merged checkpoint made by plain loops, is <see cref="LoraForwardTests"/>'.
/// </summary>
public sealed class LoraHfReferenceTests
{
    [Theory]
    [InlineData(Fixtures.V3Tiny, "attn-r4")]
    [InlineData(Fixtures.V3Tiny, "mlp-r8-rslora")]
    [InlineData(Fixtures.V2LiteTiny, "q-kv-down-r8")]
    public void An_adapter_gives_the_logits_and_greedy_tokens_of_hf_on_its_merged_weights(string checkpoint, string name)
    {
        var folder = Path.Combine(Fixtures.Root, checkpoint + "-lora", name);
        var reference = Fixtures.LoadReference(Path.Combine(checkpoint + "-lora", name));
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(checkpoint), ScalarType.Float64, CPU);
        var adapter = LoraAdapter.Load(name, folder, LoraTargets.Of(model.Config), maxRank: 8);
        var slots = LoraSlots.Attach(model, slotCount: 1, maxRank: 8, adapter.Modules.Keys);
        var slot = slots.Place([adapter])[0];
        foreach (var prompt in reference.Prompts)
        {
            using var cache = model.CreateCache(prompt.InputIds.Length + prompt.Greedy.Length);
            var generated = new List<long>();
            var next = prompt.InputIds;
            var position = 0;
            for (var step = 0; step < prompt.Greedy.Length; step++)
            {
                using var scope = NewDisposeScope();
                var batch = ForwardBatch.Contiguous(next, position);
                using var output = model.Forward(batch with { Sequences = [batch.Sequences[0] with { Adapter = slot }] }, cache);
                if (step == 0)
                {
                    var last = output.Logits[-1].data<double>().ToArray();
                    for (var v = 0; v < last.Length; v++)
                        Assert.True(Math.Abs(last[v] - prompt.LastLogits[v]) <= 1e-6, $"{name}, logit {v}: {last[v]} vs {prompt.LastLogits[v]}");
                }
                position += next.Length;
                generated.Add(output.Logits[-1].argmax().item<long>());
                next = [generated[^1]];
            }
            Assert.Equal(prompt.Greedy, generated.ToArray());
        }
    }
}
