using System.Collections.Concurrent;
using System.Diagnostics;
using DeepSeek.Engine;
using DeepSeek.Engine.Execution;
using DeepSeek.Engine.Requests;
using DeepSeek.Model.Lora;

namespace DeepSeek.Runtime.Bench;

/// <summary>
/// Offline throughput of the engine in-process, as the Hugging Face peer measures it: a batch of
/// random prompts submitted together (one prefill step when the token budget allows), then greedy
/// decoding to a fixed length. Prefill tokens/s is prompt tokens over the time of the steps that
/// prefill; decode tokens/s is tokens sampled in pure decode steps over those steps' time. Step times
/// are taken on the engine thread and include scheduling, the logits copy and sampling.
/// </summary>
/// <remarks>
/// With <paramref name="adapters"/>, request i of a batch runs on adapter i mod their count (LoRA). With
/// <paramref name="structured"/>, the first of each batch's requests decode under its constraint
/// (structured outputs), the others without, in the same steps. With <paramref name="recordMargins"/>,
/// each token's log-probability margin over the runner-up is kept beside its id.
/// </remarks>
public sealed class EngineBenchmark(InferenceEngine engine, ConcurrentQueue<StepTiming> steps, int vocabSize, int seed, IReadOnlyList<LoraAdapter>? adapters = null,
    StructuredLoad? structured = null, bool recordMargins = false)
{
    private IReadOnlyList<GenerationHandle> Submit(List<IReadOnlyList<int>> prompts, SamplingParameters sampling)
    {
        var constrained = structured?.ConstrainedOf(prompts.Count) ?? 0;
        if (adapters is not { Count: > 0 } && constrained == 0) return engine.SubmitBatch(prompts, sampling);
        return engine.SubmitBatch([.. prompts.Select((prompt, i) =>
        {
            var request = engine.Validator.Validate(prompt, i < constrained ? sampling with { Constraint = structured!.Constraint } : sampling, RequestFields.Completions);
            return adapters is { Count: > 0 } ? request.WithAdapter(adapters[i % adapters.Count]) : request;
        })]);
    }

    public async Task<BenchResult> RunAsync(int batch, int promptTokens, int outputTokens, DecodeFloor floor, double bandwidthGBs, Action<int> onTokens)
    {
        var random = new Random(seed + batch);
        List<IReadOnlyList<int>> RandomPrompts() => Enumerable.Range(0, batch)
            .Select(_ => (IReadOnlyList<int>)Enumerable.Range(0, promptTokens).Select(_ => random.Next(vocabSize)).ToArray())
            .ToList();

        // Warm up this batch shape first, as the peer does (library heuristics and allocator growth
        // for new shapes stay out of the numbers), on other prompts so no prefix-cache hit follows.
        // Constrained batches warm up for the whole length: a server's schema in use has its states'
        // masks cached (what a new schema's first masks cost, `bench structured` measures).
        foreach (var handle in Submit(RandomPrompts(), new SamplingParameters { Temperature = 0f, MaxTokens = structured is null ? 4 : outputTokens, IgnoreEos = true }))
            await foreach (var _ in handle.Events.ReadAllAsync()) { }

        var prompts = RandomPrompts();
        var sampling = new SamplingParameters { Temperature = 0f, MaxTokens = outputTokens, IgnoreEos = true, Logprobs = recordMargins ? 2 : null };
        steps.Clear();

        var clock = Stopwatch.StartNew();
        var handles = Submit(prompts, sampling);
        var perRequest = await Task.WhenAll(handles.Select(async handle =>
        {
            var times = new List<double>(outputTokens);
            var tokens = new List<int>(outputTokens);
            var margins = new List<float>(recordMargins ? outputTokens : 0);
            await foreach (var item in handle.Events.ReadAllAsync())
            {
                if (item.FinishReason is FinishReason.Error or FinishReason.Cancelled)
                    throw new InvalidOperationException($"A benchmark request ended with {item.FinishReason}: {item.ErrorMessage}");
                if (item.TokenId is null) continue;
                times.Add(clock.Elapsed.TotalMilliseconds);
                tokens.Add(item.TokenId.Value);
                if (item.Logprobs is { Top.Count: >= 2 } logprobs) margins.Add(logprobs.Top[0].Logprob - logprobs.Top[1].Logprob);
                onTokens(1);
            }
            return (Times: times, Tokens: (IReadOnlyList<int>)tokens, Margins: (IReadOnlyList<float>)margins);
        })).ConfigureAwait(false);

        var all = steps.ToArray();
        var prefill = all.Where(s => s.PrefillTokens > 0).ToArray();
        var decode = all.Where(s => s.PrefillTokens == 0).ToArray();
        var prefillSeconds = prefill.Sum(s => s.Elapsed.TotalSeconds);
        var decodeSeconds = decode.Sum(s => s.Elapsed.TotalSeconds);
        var ttft = perRequest.Select(r => r.Times[0]).ToArray();
        var itl = perRequest.SelectMany(r => r.Times.Zip(r.Times.Skip(1), (a, b) => b - a)).ToArray();
        var floorMs = floor.MsPerStep(batch, bandwidthGBs);
        return new BenchResult(
            batch, promptTokens, outputTokens, prefill.Length,
            prefillSeconds > 0 ? prefill.Sum(s => s.PrefillTokens) / prefillSeconds : 0,
            decodeSeconds > 0 ? decode.Sum(s => s.SampledTokens) / decodeSeconds : 0,
            decode.Length > 0 ? decodeSeconds * 1e3 / decode.Length : 0,
            Percentile(ttft, 0.5), Percentile(ttft, 0.9), Percentile(ttft, 0.99),
            Percentile(itl, 0.5), Percentile(itl, 0.9), Percentile(itl, 0.99),
            floorMs, batch / (floorMs / 1e3))
        {
            TokenIds = [.. perRequest.Select(r => r.Tokens)],
            TokenMargins = recordMargins ? [.. perRequest.Select(r => r.Margins)] : null,
            PromptTokenIds = recordMargins ? prompts : null,
            ConstrainedRequests = structured?.ConstrainedOf(batch) ?? 0,
            MaskMsPerDecodeStep = decode.Length > 0 ? decode.Average(s => s.MaskElapsed.TotalMilliseconds) : 0,
        };
    }

    /// <summary>Nearest-rank percentile; 0 for no samples.</summary>
    public static double Percentile(IReadOnlyCollection<double> values, double quantile)
    {
        if (values.Count == 0) return 0;
        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(quantile * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }
}
