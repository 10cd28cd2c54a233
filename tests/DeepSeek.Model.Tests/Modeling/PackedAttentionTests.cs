using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Modeling;

/// <summary>
/// The expanded form over packed sequences (what the varlen kernels compute on CUDA), run on the CPU
/// with a reference kernel of the same contract, gives the logits of the padded SDPA path: the packing,
/// the per-sequence context gather, the padding of v to q·k's head dim for FlashAttention
/// (<see cref="VarlenAttentionKernels.WithValuesPadded"/>), the scale and the way back to batch order are
/// the model's own code; only the kernel is stood in for.
/// </summary>
public sealed class PackedAttentionTests
{
    [Fact]
    public void Prefill_in_chunks_through_packed_attention_gives_the_logits_of_the_padded_path()
    {
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V2LiteTiny), ScalarType.Float64, CPU);
        var prompt = Fixtures.LoadReference(Fixtures.V2LiteTiny).Prompts.Select(p => p.InputIds).MaxBy(ids => ids.Length)!;
        Assert.True(prompt.Length >= 40, "the fixture needs a prompt long enough for three chunks");

        Tensor LastLogits(int chunk)
        {
            using var cache = model.CreateCache(prompt.Length);
            Tensor? last = null;
            for (var start = 0; start < prompt.Length; start += chunk)
            {
                var ids = prompt[start..Math.Min(prompt.Length, start + chunk)];
                using var output = model.Forward(ForwardBatch.Contiguous(ids, start) with { Attention = AttentionForm.Expanded }, cache);
                last?.Dispose();
                last = output.Logits[0].clone();
            }
            return last!;
        }

        using var padded = LastLogits(17);
        var calls = 0;
        model.VarlenKernel = Counting(() => calls++);
        using var packed = LastLogits(17);
        using var packedWhole = LastLogits(prompt.Length);
        // As FlashAttention takes it: v padded with zeros to q·k's head dim, the output narrowed back.
        model.VarlenKernel = VarlenAttentionKernels.WithValuesPadded(Counting(() => calls++, headDimOfValues: model.Config.QkNopeHeadDim + model.Config.QkRopeHeadDim));
        using var packedPaddedValues = LastLogits(17);
        model.VarlenKernel = null;

        // Every layer of every step went through the kernel: the chunks of 17, the whole prompt, the chunks again.
        Assert.Equal(((2 * ((prompt.Length + 16) / 17)) + 1) * model.Config.NumHiddenLayers, calls);
        Assert.True((packed - padded).abs().max().item<double>() < 1e-10);
        Assert.True((packedWhole - padded).abs().max().item<double>() < 1e-10);
        Assert.True((packedPaddedValues - padded).abs().max().item<double>() < 1e-10);
    }

    [Fact]
    public void Mixed_batch_listed_out_of_order_through_packed_attention_gives_every_tokens_logits_of_the_padded_path()
    {
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V2LiteTiny), ScalarType.Float64, CPU);
        var prompts = Fixtures.LoadReference(Fixtures.V2LiteTiny).Prompts;
        long[] a = prompts[3].InputIds, b = prompts[1].InputIds, c = prompts[2].InputIds;
        const int blockSize = 4;
        // Each sequence owns its own blocks of one shared cache: a from 0, b from 32, c from 64.
        int[] Blocks(int first, int tokens) => [.. Enumerable.Range(first, (tokens + blockSize - 1) / blockSize)];
        int[] aBlocks = Blocks(0, a.Length), bBlocks = Blocks(32, b.Length), cBlocks = Blocks(64, c.Length);
        static long[] Positions(int from, int count) => [.. Enumerable.Range(from, count).Select(p => (long)p)];
        var aCached = a.Length - 20;

        Tensor AllLogits(VarlenAttentionKernel? kernel)
        {
            using var cache = model.CreateCache(96 * blockSize);
            model.VarlenKernel = kernel;
            // Cached beforehand: a's first tokens, and b but for its last token.
            var prefixes = new ForwardBatch([.. a[..aCached], .. b[..^1]], [.. Positions(0, aCached), .. Positions(0, b.Length - 1)],
                [new SequenceSpan(0, aCached, aBlocks), new SequenceSpan(aCached, b.Length - 1, bBlocks)], blockSize, Attention: AttentionForm.Expanded);
            using (model.Forward(prefixes, cache)) { }
            // Listed: b's decode row (batch row 20), a's next chunk of 20 (rows 0–19), c as a fresh prompt (rows 21 on).
            var mixed = new ForwardBatch([.. a[aCached..], b[^1], .. c], [.. Positions(aCached, 20), b.Length - 1, .. Positions(0, c.Length)],
                [new SequenceSpan(20, 1, bBlocks), new SequenceSpan(0, 20, aBlocks), new SequenceSpan(21, c.Length, cBlocks)], blockSize,
                LogitsSelection.AllTokens, AttentionForm.Expanded);
            using var output = model.Forward(mixed, cache);
            model.VarlenKernel = null;
            return output.Logits.clone();
        }

        using var padded = AllLogits(null);
        var calls = 0;
        using var packed = AllLogits(VarlenAttentionKernels.WithValuesPadded(Counting(() => calls++)));

        Assert.Equal(2 * model.Config.NumHiddenLayers, calls); // the prefixes' step and the mixed one
        Assert.Equal(21 + c.Length, packed.shape[0]);
        Assert.True((packed - padded).abs().max().item<double>() < 1e-10);
    }

    /// <summary>The reference kernel, counting its calls; <paramref name="headDimOfValues"/>: the width it must be given v at.</summary>
    private static VarlenAttentionKernel Counting(Action called, long? headDimOfValues = null) => (query, keys, values, varlen, scale) =>
    {
        called();
        if (headDimOfValues is { } width) Assert.Equal(width, values.shape[^1]);
        return Reference(query, keys, values, varlen, scale);
    };

    /// <summary>
    /// Attention over packed sequences by definition: per sequence, softmax of scaled scores with
    /// <see cref="VarlenLayout.Sees"/> as the causal rule, times the values: every head dim of v, as the
    /// kernels return it.
    /// </summary>
    private static Tensor Reference(Tensor query, Tensor keys, Tensor values, VarlenAttention varlen, double scale)
    {
        var layout = varlen.Layout;
        using var scaleScalar = scale.ToScalar();
        var outputs = new Tensor[layout.SequenceCount];
        for (var s = 0; s < layout.SequenceCount; s++)
        {
            int n = layout.QueryLength(s), c = layout.ContextLength(s);
            var q = query.narrow(0, layout.CumulativeQueries[s], n).transpose(0, 1);   // [H, n, D]
            var k = keys.narrow(0, layout.CumulativeContexts[s], c).transpose(0, 1);    // [H, c, D]
            var v = values.narrow(0, layout.CumulativeContexts[s], c).transpose(0, 1);  // [H, c, D]
            var sees = new bool[n * c];
            for (var i = 0; i < n; i++)
                for (var j = 0; j < c; j++) sees[(i * c) + j] = layout.Sees(s, i, j);
            var hidden = tensor(sees).view(1, n, c).logical_not();
            var scores = matmul(q, k.transpose(1, 2)).mul(scaleScalar).masked_fill(hidden, HeldScalars.NegativeInfinity);
            outputs[s] = matmul(scores.softmax(-1), v).transpose(0, 1);                 // [n, H, D]
        }
        return cat(outputs, 0);
    }
}
