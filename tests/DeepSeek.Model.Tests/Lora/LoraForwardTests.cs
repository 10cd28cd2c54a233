using DeepSeek.Model.Lora;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Native;
using DeepSeek.Model.Tests.Support;
using DeepSeek.Testing;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Lora;

/// <summary>
/// Adapters applied per sequence inside one batch against an independent reference: the checkpoint with
/// <c>W + scale·B·A</c> merged into its weights by <see cref="LoraFolders.WriteMerged"/> (plain loops, never
/// the runtime's adapter path), loaded as an ordinary model. Float64 on CPU, so tokens must be identical.
/// </summary>
public sealed class LoraForwardTests : IDisposable
{
    private const int BlockSize = 16;
    private readonly string _root = Directory.CreateTempSubdirectory("deepseek-lora-forward-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private (LoraAdapter Adapter, string Merged) Make(LoraFolders.Spec spec, DeepSeekForCausalLM model)
    {
        var baseDir = Fixtures.Dir(Fixtures.V3Tiny);
        var folder = LoraFolders.WriteAdapter(baseDir, spec, Path.Combine(_root, spec.Name));
        return (LoraAdapter.Load(spec.Name, folder, LoraTargets.Of(model.Config), maxRank: 8),
            LoraFolders.WriteMerged(baseDir, folder, Path.Combine(_root, spec.Name + "-merged")));
    }

    [Fact]
    public void Base_and_two_adapters_decoded_in_one_batch_each_get_the_tokens_of_their_merged_weights()
    {
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.Float64, CPU);
        var (attention, attentionMerged) = Make(LoraFolders.AttentionR4, model);
        var (mlp, mlpMerged) = Make(LoraFolders.MlpR8Rslora, model);
        var slots = LoraSlots.Attach(model, slotCount: 2, maxRank: 8);
        var reference = Fixtures.LoadReference(Fixtures.V3Tiny).Prompts;
        var prompts = new[] { reference[0].InputIds, reference[1].InputIds, reference[2].InputIds };
        const int steps = 12;

        // The references: HF's greedy tokens for the base model, each merged checkpoint's own greedy for the adapters.
        using var attentionModel = DeepSeekForCausalLM.Load(attentionMerged, ScalarType.Float64, CPU);
        using var mlpModel = DeepSeekForCausalLM.Load(mlpMerged, ScalarType.Float64, CPU);
        var expected = new[]
        {
            reference[0].Greedy[..steps],
            GreedyDecoding.Cached(attentionModel, prompts[1], steps),
            GreedyDecoding.Cached(mlpModel, prompts[2], steps),
        };
        // The adapters change the tokens, or the comparison would prove nothing.
        Assert.NotEqual(GreedyDecoding.Cached(model, prompts[1], steps), expected[1]);
        Assert.NotEqual(GreedyDecoding.Cached(model, prompts[2], steps), expected[2]);

        var adapters = new LoraAdapter?[] { null, attention, mlp };
        var slotOf = slots.Place(adapters);
        Assert.Equal(-1, slotOf[0]);
        Assert.NotEqual(slotOf[1], slotOf[2]);
        const int blocksPerSequence = 8;
        using var cache = model.CreateCache(((3 * blocksPerSequence) + 1) * BlockSize);
        using var graphs = new DecodeGraphs(model, cache, BlockSize, paddingBlock: 3 * blocksPerSequence, DecodeGraphBuckets.UpTo(4), helper: null);
        var blocks = Enumerable.Range(0, 3).Select(s => (IReadOnlyList<int>)[.. Enumerable.Range(s * blocksPerSequence, blocksPerSequence)]).ToArray();

        // One prefill of all three prompts, then decode steps of all three through the padded (graph) body.
        var starts = new int[3];
        for (var s = 1; s < 3; s++) starts[s] = starts[s - 1] + prompts[s - 1].Length;
        var prefill = new ForwardBatch([.. prompts.SelectMany(p => p)], [.. prompts.SelectMany(p => Enumerable.Range(0, p.Length).Select(i => (long)i))],
            [.. Enumerable.Range(0, 3).Select(s => new SequenceSpan(starts[s], prompts[s].Length, blocks[s], slotOf[s]))], BlockSize);
        var generated = Enumerable.Range(0, 3).Select(_ => new List<long>()).ToArray();
        using (var first = model.Forward(prefill, cache))
        {
            // The first step's logits equal the merged models' within float64 rounding.
            using var attentionCache = attentionModel.CreateCache(prompts[1].Length);
            using var alone = attentionModel.Forward(ForwardBatch.Contiguous(prompts[1], 0), attentionCache);
            Assert.True((first.Logits[1] - alone.Logits[0]).abs().max().item<double>() < 1e-9);
            for (var s = 0; s < 3; s++) generated[s].Add(first.Logits[s].argmax().item<long>());
        }
        for (var step = 1; step < steps; step++)
        {
            var batch = new ForwardBatch([.. generated.Select(g => g[^1])], [.. Enumerable.Range(0, 3).Select(s => (long)(prompts[s].Length + step - 1))],
                [.. Enumerable.Range(0, 3).Select(s => new SequenceSpan(s, 1, blocks[s], slotOf[s]))], BlockSize);
            using var output = graphs.TryForward(batch) ?? throw new InvalidOperationException("a plain decode step was not taken");
            for (var s = 0; s < 3; s++) generated[s].Add(output.Logits[s].argmax().item<long>());
        }
        for (var s = 0; s < 3; s++) Assert.Equal(expected[s], generated[s].ToArray());
    }

    [Fact]
    public void Adapters_beyond_the_slots_are_swapped_in_least_recently_used_first()
    {
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.Float32, CPU);
        var (attention, _) = Make(LoraFolders.AttentionR4, model);
        var (mlp, _) = Make(LoraFolders.MlpR8Rslora, model);
        var third = LoraAdapter.Load("third", attention.Directory, LoraTargets.Of(model.Config), maxRank: 8);
        var slots = LoraSlots.Attach(model, slotCount: 2, maxRank: 8);

        Assert.Equal([0, -1, 1], slots.Place([attention, null, mlp]));
        Assert.Equal([0], slots.Place([attention]));           // attention is now the more recently used
        Assert.Equal([1], slots.Place([third]));               // so mlp's slot is taken
        Assert.Equal([attention, third], slots.Resident);
        Assert.Contains("2 slots", Assert.Throws<InvalidOperationException>(() => slots.Place([attention, mlp, third])).Message, StringComparison.Ordinal);
        slots.Evict(attention);
        Assert.Equal([null, third], slots.Resident);
    }

    [Fact]
    public void Slots_cover_only_the_projections_they_were_made_for()
    {
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.Float32, CPU);
        var (attention, _) = Make(LoraFolders.AttentionR4, model);
        var (mlp, _) = Make(LoraFolders.MlpR8Rslora, model);
        var slots = LoraSlots.Attach(model, slotCount: 1, maxRank: 8, attention.Modules.Keys);
        slots.Load(0, attention);
        Assert.Contains("--enable-lora-updates", Assert.Throws<LoraAdapterException>(() => slots.Load(0, mlp)).Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => LoraSlots.Attach(model, 1, 8));
    }
}
