using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Modeling;

/// <summary>What the engine relies on: slots anywhere, sequences mixed in one batch, results unchanged.</summary>
public sealed class BatchingTests
{
    [Fact]
    public void Mixed_prefill_and_decode_batch_over_scattered_slots_equals_each_sequence_alone()
    {
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.Float64, CPU);
        var prompts = Fixtures.LoadReference(Fixtures.V3Tiny).Prompts;
        long[] a = prompts[0].InputIds, b = prompts[1].InputIds;

        // Alone: a as one prefill; b as a prefill of all but its last token, then a decode of the last.
        using var aloneCache = model.CreateCache(a.Length + b.Length);
        using var aAlone = model.Forward(ForwardBatch.Contiguous(a, 0), aloneCache);
        using var bCache = model.CreateCache(b.Length);
        using (model.Forward(ForwardBatch.Contiguous(b[..^1], 0), bCache)) { }
        using var bAlone = model.Forward(ForwardBatch.Contiguous([b[^1]], b.Length - 1), bCache);

        // Together: b's context already sits in odd slots of a shared cache; a prefills into even slots
        // (blocks of one token, so the block tables are the slots themselves).
        using var shared = model.CreateCache(2 * (a.Length + b.Length));
        var bSlots = Enumerable.Range(0, b.Length).Select(i => 2 * i + 1).ToArray();
        var aSlots = Enumerable.Range(0, a.Length).Select(i => 2 * i).ToArray();
        var bPrefix = new ForwardBatch(b[..^1], Enumerable.Range(0, b.Length - 1).Select(i => (long)i).ToArray(),
            [new SequenceSpan(0, b.Length - 1, bSlots[..^1])], BlockSize: 1);
        using (model.Forward(bPrefix, shared)) { }
        var mixed = new ForwardBatch(
            [b[^1], .. a],
            [b.Length - 1, .. Enumerable.Range(0, a.Length).Select(i => (long)i)],
            [new SequenceSpan(0, 1, bSlots), new SequenceSpan(1, a.Length, aSlots)], BlockSize: 1);
        using var together = model.Forward(mixed, shared);

        Assert.Equal(2, together.Logits.shape[0]);
        Assert.True((together.Logits[0] - bAlone.Logits[0]).abs().max().item<double>() < 1e-10);
        Assert.True((together.Logits[1] - aAlone.Logits[0]).abs().max().item<double>() < 1e-10);
        // Every MoE layer routed each of the batch's tokens to num_experts_per_tok experts.
        Assert.Equal(2, together.ExpertLoads.Count);
        Assert.All(together.ExpertLoads, load => Assert.Equal((1 + a.Length) * model.Config.NumExpertsPerTok, load.TokensPerExpert.Sum()));
    }

    [Fact]
    public void Batch_whose_block_table_leaves_the_cache_or_its_context_is_rejected()
    {
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V2LiteTiny), ScalarType.Float32, CPU);
        using var cache = model.CreateCache(8);
        var outside = new ForwardBatch([5, 6], [0, 1], [new SequenceSpan(0, 2, [2])], BlockSize: 4);
        Assert.Contains("Block 2", Assert.Throws<ArgumentException>(() => model.Forward(outside, cache)).Message, StringComparison.Ordinal);
        var tooFewBlocks = new ForwardBatch([5, 6], [3, 4], [new SequenceSpan(0, 2, [0])], BlockSize: 4);
        Assert.Contains("1 blocks of 4", Assert.Throws<ArgumentException>(() => model.Forward(tooFewBlocks, cache)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Fixtures.V3Tiny)]
    [InlineData(Fixtures.V2LiteTiny)]
    public void Prefill_in_either_attention_form_whole_or_in_chunks_gives_the_logits_of_one_whole_prompt(string name)
    {
        // The expanded form attends through SDPA (a whole fresh prompt with the plain causal triangle,
        // later chunks with a mask over the cached context); the absorbed form scores the latent. All agree.
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.Float64, CPU);
        var prompt = Fixtures.LoadReference(name).Prompts.Select(p => p.InputIds).MaxBy(ids => ids.Length)!;
        Assert.True(prompt.Length >= 40, "the fixture needs a prompt long enough for three chunks");

        Tensor LastLogits(int chunk, AttentionForm form)
        {
            using var cache = model.CreateCache(prompt.Length);
            Tensor? last = null;
            for (var start = 0; start < prompt.Length; start += chunk)
            {
                var ids = prompt[start..Math.Min(prompt.Length, start + chunk)];
                using var output = model.Forward(ForwardBatch.Contiguous(ids, start) with { Attention = form }, cache);
                last?.Dispose();
                last = output.Logits[0].clone();
            }
            return last!;
        }

        using var reference = LastLogits(prompt.Length, AttentionForm.Absorbed);
        foreach (var (chunk, form) in new[] { (prompt.Length, AttentionForm.Expanded), (17, AttentionForm.Expanded), (15, AttentionForm.Absorbed) })
        {
            using var logits = LastLogits(chunk, form);
            Assert.True((logits - reference).abs().max().item<double>() < 1e-10, $"{form} in chunks of {chunk}");
        }
    }

    [Fact]
    public void Attention_form_is_absorbed_for_decode_and_short_prompts_and_expanded_for_long_prefills()
    {
        var v2Lite = DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V2LiteTiny)) with
        {
            NumAttentionHeads = 16, KvLoraRank = 512, QkNopeHeadDim = 128, QkRopeHeadDim = 64, VHeadDim = 128,
        };
        Assert.Equal(AttentionForm.Absorbed, AttentionForms.Choose(v2Lite, 32, 1, 4096));      // decode, long contexts
        Assert.Equal(AttentionForm.Absorbed, AttentionForms.Choose(v2Lite, 32, 64, 64));       // short prompts: expansion costs more
        Assert.Equal(AttentionForm.Expanded, AttentionForms.Choose(v2Lite, 1, 256, 256));      // longer prompts: fewer multiply-adds
        Assert.Equal(AttentionForm.Expanded, AttentionForms.Choose(v2Lite, 1, 8192, 32768));   // and the score matrix would not fit
        // Memory alone decides when the scores would exceed the cap, even where absorbing costs less.
        var tiny = DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny));
        Assert.Equal(AttentionForm.Absorbed, AttentionForms.Choose(tiny, 1, 128, 128));
        Assert.Equal(AttentionForm.Expanded, AttentionForms.Choose(tiny, 1, 8192, 8192));
    }
}
