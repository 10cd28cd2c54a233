using DeepSeek.Engine.IntegrationTests.Support;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Model.Lora;
using DeepSeek.Model.Modeling;
using DeepSeek.Testing;
using static DeepSeek.Engine.IntegrationTests.Support.EngineHarness;
using static TorchSharp.torch;

namespace DeepSeek.Engine.IntegrationTests;

/// <summary>
/// LoRA adapters through the whole engine (scheduler, adapter slots, prefix cache) on the reference
/// checkpoint, in float64: each request gets the greedy tokens of its own weights — HF's for the base
/// model, and for an adapter those of the checkpoint with <c>W + scale·B·A</c> merged into it by plain
/// loops (<see cref="LoraFolders.WriteMerged"/>), never by the runtime's adapter path.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class LoraServingTests : IDisposable
{
    private const int Steps = 10;
    private readonly string _root = Directory.CreateTempSubdirectory("deepseek-lora-engine-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>The adapter set of the two test adapters, and each adapter's merged checkpoint.</summary>
    private (LoraAdapterSet Set, Dictionary<string, string> Merged) Adapters(bool updatable = false)
    {
        var baseDir = ReferenceCheckpoints.Dir(ReferenceCheckpoints.V3Tiny);
        var config = Model.Configuration.DeepSeekConfig.Load(baseDir);
        var set = new LoraAdapterSet(ReferenceCheckpoints.V3Tiny, LoraTargets.Of(config), maxRank: 8, updatable);
        var merged = new Dictionary<string, string>();
        foreach (var spec in new[] { LoraFolders.AttentionR4, LoraFolders.MlpR8Rslora })
        {
            var folder = LoraFolders.WriteAdapter(baseDir, spec, Path.Combine(_root, spec.Name));
            set.Load(spec.Name, folder);
            merged[spec.Name] = LoraFolders.WriteMerged(baseDir, folder, Path.Combine(_root, spec.Name + "-merged"));
        }
        return (set, merged);
    }

    private static Task<InferenceEngine> StartAsync(EngineOptions options, LoraAdapterSet adapters, EngineMetrics? metrics = null) =>
        InferenceEngine.StartAsync(options, () => LoadModel(ReferenceCheckpoints.V3Tiny), Decoder(ReferenceCheckpoints.V3Tiny),
            metrics ?? new EngineMetrics(options.ServedModelName), adapters: adapters);

    private static GenerationHandle Submit(InferenceEngine engine, IReadOnlyList<int> prompt, LoraAdapter? adapter, int tokens = Steps) =>
        engine.Submit(engine.Validator.Validate(prompt, Greedy(tokens), RequestFields.Completions).WithAdapter(adapter));

    /// <summary>Greedy tokens of a checkpoint folder's model alone, one contiguous cache.</summary>
    private static int[] MergedGreedy(string directory, int[] prompt, int count)
    {
        using var model = DeepSeekForCausalLM.Load(directory, ScalarType.Float64, CPU);
        using var cache = model.CreateCache(prompt.Length + count);
        var generated = new List<int>();
        IReadOnlyList<long> next = [.. prompt.Select(t => (long)t)];
        var position = 0;
        for (var step = 0; step < count; step++)
        {
            using var scope = NewDisposeScope();
            using var output = model.Forward(ForwardBatch.Contiguous(next, position), cache);
            position += next.Count;
            generated.Add((int)output.Logits[-1].argmax().item<long>());
            next = [generated[^1]];
        }
        return [.. generated];
    }

    [Theory]
    [InlineData(2, 2048)]
    [InlineData(2, 7)]  // prompts prefilled in chunks of at most 7 tokens, mixed with decodes of the other adapters
    [InlineData(1, 2048)] // one slot: the adapters take turns, swapped in and out of it
    public async Task Two_adapters_and_the_base_in_one_concurrent_wave_each_get_their_reference_tokens(int maxLoras, int maxBatchTokens)
    {
        var (set, merged) = Adapters();
        var prompts = ReferenceCheckpoints.Prompts(ReferenceCheckpoints.V3Tiny);
        var attention = set.Find(LoraFolders.AttentionR4.Name)!;
        var mlp = set.Find(LoraFolders.MlpR8Rslora.Name)!;
        // Every prompt once on each of base, attention and mlp, all submitted before the first step.
        var wave = prompts.Take(3).SelectMany(p => new LoraAdapter?[] { null, attention, mlp }.Select(a => (Prompt: p, Adapter: a))).ToList();
        var expected = wave.Select(w => w.Adapter is null ? w.Prompt.Greedy[..Steps] : MergedGreedy(merged[w.Adapter.Name], w.Prompt.InputIds, Steps)).ToList();
        Assert.All(wave.Where(w => w.Adapter is not null), w => Assert.NotEqual(w.Prompt.Greedy[..Steps], expected[wave.IndexOf(w)]));

        var steps = new System.Collections.Concurrent.ConcurrentQueue<int>();
        await using var engine = await InferenceEngine.StartAsync(
            new EngineOptions { ServedModelName = "lora", MaxLoras = maxLoras, MaxLoraRank = 8, MaxBatchTokens = maxBatchTokens, KvCacheBlocks = 256 },
            () => LoadModel(ReferenceCheckpoints.V3Tiny), Decoder(ReferenceCheckpoints.V3Tiny), new EngineMetrics("lora"),
            onStep: timing => steps.Enqueue(timing.PrefillTokens + timing.DecodeTokens), adapters: set);
        var handles = wave.Select(w => Submit(engine, w.Prompt.InputIds, w.Adapter)).ToList();
        var results = await Task.WhenAll(handles.Select(CollectAsync));

        for (var i = 0; i < wave.Count; i++)
            Assert.True(expected[i].SequenceEqual(Tokens(results[i])), $"request {i} ({wave[i].Adapter?.Name ?? "base"}): expected [{string.Join(", ", expected[i])}], got [{string.Join(", ", Tokens(results[i]))}]");
        // Requests of several adapters and the base did share steps (no per-adapter batches).
        Assert.Contains(steps, tokens => tokens > 3);
    }

    /// <summary>
    /// The adapters of <c>scripts/gpu/make_lora_fixture.py</c> (<c>tests/fixtures/deepseek-v3-tiny-lora</c>) and the
    /// base, every reference prompt on each, as one concurrent wave: each request gets HF transformers' greedy
    /// tokens on its merged weights (the fixture's reference.json), the base HF's own.
    /// </summary>
    [Fact]
    public async Task The_hf_fixture_adapters_and_the_base_in_one_concurrent_wave_each_get_hfs_merged_weight_tokens()
    {
        var baseDir = ReferenceCheckpoints.Dir(ReferenceCheckpoints.V3Tiny);
        var set = new LoraAdapterSet(ReferenceCheckpoints.V3Tiny, LoraTargets.Of(Model.Configuration.DeepSeekConfig.Load(baseDir)), maxRank: 8, updatable: false);
        string[] names = ["attn-r4", "mlp-r8-rslora"];
        foreach (var name in names) set.Load(name, Path.Combine(baseDir + "-lora", name));
        var references = names.ToDictionary(n => n, n => ReferenceCheckpoints.Prompts(Path.Combine(ReferenceCheckpoints.V3Tiny + "-lora", n)));
        var prompts = ReferenceCheckpoints.Prompts(ReferenceCheckpoints.V3Tiny);
        var wave = Enumerable.Range(0, prompts.Count).SelectMany(i => new string?[] { null, names[0], names[1] }.Select(n => (Index: i, Adapter: n))).ToList();
        var expected = wave.Select(w => (w.Adapter is null ? prompts[w.Index] : references[w.Adapter][w.Index]).Greedy[..Steps]).ToList();
        Assert.All(names, n => Assert.Equal(prompts.Select(p => p.InputIds), references[n].Select(p => p.InputIds)));

        await using var engine = await StartAsync(new EngineOptions { ServedModelName = "hf-lora", MaxLoras = 2, MaxLoraRank = 8, KvCacheBlocks = 256 }, set);
        var handles = wave.Select(w => Submit(engine, prompts[w.Index].InputIds, w.Adapter is null ? null : set.Find(w.Adapter))).ToList();
        var results = await Task.WhenAll(handles.Select(CollectAsync));

        for (var i = 0; i < wave.Count; i++)
            Assert.True(expected[i].SequenceEqual(Tokens(results[i])),
                $"prompt {wave[i].Index} on {wave[i].Adapter ?? "the base"}: HF [{string.Join(", ", expected[i])}], got [{string.Join(", ", Tokens(results[i]))}]");
    }

    [Fact]
    public async Task A_prompt_shared_by_two_adapters_never_reuses_the_other_adapters_prefix_blocks()
    {
        var (set, merged) = Adapters();
        var prompt = ReferenceCheckpoints.Prompts(ReferenceCheckpoints.V3Tiny)[1]; // 22 tokens: 5 full blocks of 4
        var attention = set.Find(LoraFolders.AttentionR4.Name)!;
        var mlp = set.Find(LoraFolders.MlpR8Rslora.Name)!;
        await using var engine = await StartAsync(new EngineOptions { ServedModelName = "prefix", BlockSize = 4, KvCacheBlocks = 64, MaxLoras = 2, MaxLoraRank = 8 }, set);

        var first = await CollectAsync(Submit(engine, prompt.InputIds, attention));
        var other = await CollectAsync(Submit(engine, prompt.InputIds, mlp));
        var baseModel = await CollectAsync(Submit(engine, prompt.InputIds, null));
        var again = await CollectAsync(Submit(engine, prompt.InputIds, attention));

        // The second adapter and the base found nothing of the first adapter's blocks; the first adapter finds all of them.
        Assert.Equal(0, first[^1].Usage!.CachedPromptTokens);
        Assert.Equal(0, other[^1].Usage!.CachedPromptTokens);
        Assert.Equal(0, baseModel[^1].Usage!.CachedPromptTokens);
        Assert.Equal(20, again[^1].Usage!.CachedPromptTokens);
        var attentionTokens = MergedGreedy(merged[attention.Name], prompt.InputIds, Steps);
        Assert.Equal(attentionTokens, Tokens(first));
        Assert.Equal(attentionTokens, Tokens(again));
        Assert.Equal(MergedGreedy(merged[mlp.Name], prompt.InputIds, Steps), Tokens(other));
        Assert.Equal(prompt.Greedy[..Steps], Tokens(baseModel));

        // An adapter unloaded and loaded again under the same name is another adapter: its blocks start afresh.
        Assert.True(set.Unload(attention.Name));
        var reloaded = set.Load(attention.Name, attention.Directory);
        var fresh = await CollectAsync(Submit(engine, prompt.InputIds, reloaded));
        Assert.Equal(0, fresh[^1].Usage!.CachedPromptTokens);
        Assert.Equal(attentionTokens, Tokens(fresh));
    }
}
