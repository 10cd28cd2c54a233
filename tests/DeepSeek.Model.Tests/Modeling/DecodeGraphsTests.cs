using DeepSeek.Model.Modeling;
using DeepSeek.Model.Native;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Modeling;

/// <summary>
/// The captured decode step's logic on the CPU: which steps it takes, how inputs are padded, and
/// that its padded body (what a CUDA graph replays) computes what the model's forward computes.
/// Capture and replay themselves need a GPU (scripts/gpu/bench-h200.sh compares them with eager steps).
/// </summary>
public sealed class DecodeGraphsTests
{
    private const int BlockSize = 4;

    [Theory]
    [InlineData(1, 16, 256)]
    [InlineData(256, 16, 256)]
    [InlineData(257, 16, 384)]
    [InlineData(385, 16, 512)]
    [InlineData(513, 16, 768)]
    [InlineData(1000, 16, 1024)]
    [InlineData(5000, 16, 6144)]
    [InlineData(300, 100, 400)]
    public void Context_buckets_grow_by_halves_and_quarters_and_hold_whole_blocks(int context, int blockSize, int bucket)
    {
        Assert.Equal(bucket, DecodeGraphBuckets.ContextBucket(context, blockSize));
    }

    [Fact]
    public void Packed_inputs_send_padding_rows_and_unused_table_entries_to_the_padding_block()
    {
        // Two sequences at positions 5 and 1 (contexts of 6 and 2 tokens) in a bucket of 4 rows × 12 context tokens.
        var batch = new ForwardBatch([11, 22], [5, 1], [new SequenceSpan(0, 1, [7, 3]), new SequenceSpan(1, 1, [9])], BlockSize);
        var packed = DecodeGraphs.PackInputs(batch, rows: 4, context: 12, paddingBlock: 99);

        Assert.Equal([11, 22, 0, 0], packed[..4]);                                 // token ids
        Assert.Equal([5, 1, 0, 0], packed[4..8]);                                   // positions
        Assert.Equal([(3 * BlockSize) + 1, (9 * BlockSize) + 1, 99 * BlockSize, 99 * BlockSize], packed[8..12]); // slots
        Assert.Equal([1, 1, 0, 0], packed[12..16]);                                 // counted rows
        Assert.Equal([7, 3, 99, 9, 99, 99, 99, 99, 99, 99, 99, 99], packed[16..]);  // block tables, 3 per row
    }

    [Fact]
    public void Only_plain_decode_steps_within_the_buckets_are_taken()
    {
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V2LiteTiny), ScalarType.Float32, CPU);
        using var cache = model.CreateCache(64 * BlockSize);
        using var graphs = new DecodeGraphs(model, cache, BlockSize, paddingBlock: 63, DecodeGraphBuckets.UpTo(2), helper: null);
        var decode = new ForwardBatch([1, 2], [3, 300], [new SequenceSpan(0, 1, [0]), new SequenceSpan(1, 1, [.. Enumerable.Range(1, 76)])], BlockSize);

        Assert.Equal((2, 384), graphs.BucketFor(decode));
        Assert.Equal((1, 256), graphs.BucketFor(new ForwardBatch([1], [3], [new SequenceSpan(0, 1, [0])], BlockSize)));
        Assert.Null(graphs.BucketFor(new ForwardBatch([1, 2], [0, 1], [new SequenceSpan(0, 2, [0])], BlockSize)));              // a prefill chunk
        Assert.Null(graphs.BucketFor(decode with { Logits = LogitsSelection.AllTokens }));
        Assert.Null(graphs.BucketFor(decode with { Attention = AttentionForm.Absorbed }));                                     // forced by a test
        Assert.Null(graphs.BucketFor(new ForwardBatch([1, 2, 3], [0, 0, 0],
            [new SequenceSpan(0, 1, [0]), new SequenceSpan(1, 1, [1]), new SequenceSpan(2, 1, [2])], BlockSize)));            // more than the largest bucket
        Assert.Null(graphs.BucketFor(decode with { BlockSize = 8 }));
        // The rows a lockstep group agreed: that bucket exactly, or none.
        var single = new ForwardBatch([1], [3], [new SequenceSpan(0, 1, [0])], BlockSize);
        Assert.Equal((2, 256), graphs.BucketFor(single, rows: 2));
        Assert.Null(graphs.BucketFor(single, rows: 3));   // not a bucket
        Assert.Null(graphs.BucketFor(decode, rows: 1));   // fewer rows than sequences
    }

    [Theory]
    [InlineData(Fixtures.V3Tiny)]
    [InlineData(Fixtures.V2LiteTiny)]
    public void The_padded_decode_body_gives_the_logits_and_expert_loads_of_the_forward(string name)
    {
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.Float64, CPU);
        var prompts = Fixtures.LoadReference(name).Prompts.Take(3).Select(p => p.InputIds).ToArray();
        Assert.Equal(3, prompts.Length);
        const int blocksPerSequence = 32;
        // Two caches with the same block layout: one decoded by the model's forward, one by the padded body.
        using var eagerCache = model.CreateCache(((3 * blocksPerSequence) + 1) * BlockSize);
        using var paddedCache = model.CreateCache(((3 * blocksPerSequence) + 1) * BlockSize);
        // Three sequences in a bucket of four: one padding row, which writes the padding block only.
        using var graphs = new DecodeGraphs(model, paddedCache, BlockSize, paddingBlock: 3 * blocksPerSequence, DecodeGraphBuckets.UpTo(4), helper: null);
        var blocks = Enumerable.Range(0, 3).Select(s => (IReadOnlyList<int>)[.. Enumerable.Range((s * blocksPerSequence) + 1, blocksPerSequence - 1).Reverse()]).ToArray();

        var next = new long[3];
        var lengths = prompts.Select(p => p.Length).ToArray();
        for (var s = 0; s < 3; s++)
        {
            var prefill = new ForwardBatch(prompts[s], [.. Enumerable.Range(0, lengths[s]).Select(p => (long)p)], [new SequenceSpan(0, lengths[s], blocks[s])], BlockSize);
            using var first = model.Forward(prefill, eagerCache);
            using (model.Forward(prefill, paddedCache)) { }
            next[s] = first.Logits[0].argmax().item<long>();
        }

        for (var step = 0; step < 6; step++)
        {
            var batch = new ForwardBatch([.. next], [.. lengths.Select(l => (long)l)],
                [.. Enumerable.Range(0, 3).Select(s => new SequenceSpan(s, 1, blocks[s]))], BlockSize);
            using var eager = model.Forward(batch, eagerCache);
            using var padded = graphs.TryForward(batch) ?? throw new InvalidOperationException("a plain decode step was not taken");

            Assert.Equal(eager.Logits.shape, padded.Logits.shape);
            Assert.True((eager.Logits - padded.Logits).abs().max().item<double>() < 1e-10, $"step {step}: the logits differ");
            Assert.Equal(eager.ExpertLoads.Select(l => l.LayerIndex), padded.ExpertLoads.Select(l => l.LayerIndex));
            for (var layer = 0; layer < eager.ExpertLoads.Count; layer++)
                Assert.Equal(eager.ExpertLoads[layer].TokensPerExpert, padded.ExpertLoads[layer].TokensPerExpert);
            for (var s = 0; s < 3; s++)
            {
                next[s] = eager.Logits[s].argmax().item<long>();
                lengths[s]++;
            }
        }
        Assert.Equal(1, graphs.Count);
        // The padded body wrote the sequences' slots exactly as the forward did.
        for (var layer = 0; layer < model.Config.NumHiddenLayers; layer++)
        {
            var used = (3 * blocksPerSequence) * BlockSize;
            Assert.True((eagerCache.Layer(layer).narrow(0, 0, used) - paddedCache.Layer(layer).narrow(0, 0, used)).abs().max().item<double>() < 1e-10);
        }
    }
}
