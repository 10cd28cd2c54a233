using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Modeling;

/// <summary>
/// The model against HF transformers' float64 outputs on the fixture checkpoints, with the
/// tolerances of tests/fixtures/README.md. The FP8 fixtures' references were computed on their
/// dequantised values, so the dequantised model is an ordinary model and meets the same tolerances:
/// the loader's only extra arithmetic is fp8 · scale_inv, one float32 rounding (relative 6e-8) per
/// weight, four orders below the 1e-4 the float32 forward itself is allowed, and none in float64.
/// </summary>
public sealed class ReferenceTests
{
    private const double LogitTolerance = 1e-4;
    private const double LogprobTolerance = 1e-4;
    private const double NearTie = 1e-3;

    public static TheoryData<string> Checkpoints => new() { Fixtures.V3Tiny, Fixtures.V2LiteTiny, Fixtures.V3TinyFp8, Fixtures.V3TinyFp8Sharded };

    [Theory]
    [MemberData(nameof(Checkpoints))]
    public void Float32_last_logits_and_top5_logprobs_match_reference(string name)
    {
        var reference = Fixtures.LoadReference(name);
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.Float32, CPU);
        foreach (var prompt in reference.Prompts)
        {
            using var scope = NewDisposeScope();
            using var cache = model.CreateCache(prompt.InputIds.Length);
            using var output = model.Forward(ForwardBatch.Contiguous(prompt.InputIds, 0, LogitsSelection.AllTokens), cache);
            var logits = output.Logits.to(ScalarType.Float64);
            var last = logits[-1].data<double>().ToArray();
            for (var v = 0; v < last.Length; v++)
                Assert.True(Math.Abs(last[v] - prompt.LastLogits[v]) <= LogitTolerance,
                    $"{name}: logit {v} is {last[v]}, reference {prompt.LastLogits[v]}");

            var logprobs = logits.log_softmax(-1);
            for (var position = 0; position < prompt.InputIds.Length; position++)
            {
                var row = logprobs[position];
                for (var k = 0; k < 5; k++)
                {
                    var id = prompt.Top5Ids[position][k];
                    var actual = row[id].item<double>();
                    Assert.True(Math.Abs(actual - prompt.Top5Logprobs[position][k]) <= LogprobTolerance,
                        $"{name}: position {position} token {id} logprob {actual}, reference {prompt.Top5Logprobs[position][k]}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Checkpoints))]
    public void Float32_greedy_matches_reference_up_to_first_near_tie(string name)
    {
        var reference = Fixtures.LoadReference(name);
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.Float32, CPU);
        foreach (var prompt in reference.Prompts)
        {
            var generated = GreedyDecoding.Cached(model, prompt.InputIds, prompt.Greedy.Length);
            for (var step = 0; step < prompt.Greedy.Length; step++)
            {
                Assert.Equal(prompt.Greedy[step], generated[step]);
                if (prompt.GreedyMargins[step] < NearTie) break;
            }
        }
    }

    [Theory]
    [MemberData(nameof(Checkpoints))]
    public void Float64_greedy_equals_reference_exactly(string name)
    {
        var reference = Fixtures.LoadReference(name);
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.Float64, CPU);
        foreach (var prompt in reference.Prompts)
            Assert.Equal(prompt.Greedy, GreedyDecoding.Cached(model, prompt.InputIds, prompt.Greedy.Length));
    }

    [Theory]
    [MemberData(nameof(Checkpoints))]
    public void Cached_decoding_equals_full_recomputation(string name)
    {
        var prompt = Fixtures.LoadReference(name).Prompts[0].InputIds;
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.Float64, CPU);
        const int steps = 12;
        using var cache = model.CreateCache(prompt.Length + steps);
        var tokens = new List<long>(prompt);
        using (var first = model.Forward(ForwardBatch.Contiguous(prompt, 0), cache))
            tokens.Add(first.Logits[-1].argmax().item<long>());
        for (var step = 1; step < steps; step++)
        {
            using var cached = model.Forward(ForwardBatch.Contiguous([tokens[^1]], tokens.Count - 1), cache);
            using var freshCache = model.CreateCache(tokens.Count);
            using var full = model.Forward(ForwardBatch.Contiguous(tokens, 0), freshCache);
            var difference = (cached.Logits[-1] - full.Logits[-1]).abs().max().item<double>();
            Assert.True(difference < 1e-10, $"{name}: step {step} cached and recomputed logits differ by {difference}");
            tokens.Add(full.Logits[-1].argmax().item<long>());
        }
    }
}
