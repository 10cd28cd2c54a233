using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Structured;
using DeepSeek.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Engine.Sampling;

/// <summary>
/// Picks the next token of every sampling row of a step on the device the logits are on, so only
/// token ids (and the log-probabilities a request asked for) reach the host. Each request has its own
/// random generator, seeded from its <c>seed</c> and advanced exactly once per sampled token whatever
/// the mode; the draw is made on the host and travels with the row, and every device operation is
/// row-wise, so a request's tokens depend neither on what else is batched with it nor on the device
/// beyond floating-point rounding. Create, use and dispose on the engine thread.
/// </summary>
public sealed class Sampler(IReadOnlyList<int> eosTokenIds) : IDisposable
{
    private const float GreedyBelow = 1e-5f;
    private readonly Dictionary<string, Random> _generators = [];
    private readonly Dictionary<string, ConstraintCursor> _cursors = [];
    private readonly ConstraintMasks _masks = new();

    /// <summary>Requests with a generator (sampled at least once and not forgotten).</summary>
    public int Count => _generators.Count;

    /// <summary>
    /// Host time the last <see cref="Sample"/> spent on constrained rows' masks (zero without constrained
    /// rows): advancing each row's grammar state and choosing its rule (a state met for the first time
    /// walks the vocabulary here). The masks are then built on the device (<see cref="ConstraintMasks"/>;
    /// a new state's row is uploaded once), inside the step's time but not this.
    /// </summary>
    public TimeSpan LastMaskElapsed { get; private set; }

    /// <summary>Drops the generators of finished requests.</summary>
    public void Forget(IEnumerable<string> requestIds)
    {
        ArgumentNullException.ThrowIfNull(requestIds);
        foreach (var id in requestIds)
        {
            _generators.Remove(id);
            _cursors.Remove(id);
        }
    }

    /// <summary>
    /// One token per row of <paramref name="logits"/> (<c>[rows, vocab]</c>, the last-token logits of
    /// <paramref name="requests"/> in order), from each request's parameters and the tokens it has so far.
    /// </summary>
    public SampledToken[] Sample(Tensor logits, IReadOnlyList<EngineRequest> requests)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(requests);
        LastMaskElapsed = TimeSpan.Zero;
        var rows = requests.Count;
        if (logits.dim() != 2 || logits.shape[0] != rows)
            throw new ArgumentException($"Expected logits of [{rows}, vocab], got [{string.Join(", ", logits.shape)}].", nameof(logits));
        if (rows == 0) return [];
        var vocab = (int)logits.shape[1];
        var device = logits.device;
        var parameters = requests.Select(r => r.Sampling).ToArray();

        // One draw per token whatever the mode, so a generator's position is the token's index.
        var uniform = new double[rows];
        for (var r = 0; r < rows; r++) uniform[r] = Generator(requests[r]).NextDouble();

        using var scope = NewDisposeScope();
        // No conversion (not even an alias) when the logits are float32 already: on a small model each op is a visible part of a step.
        var raw = logits.dtype == ScalarType.Float32 ? logits : logits.to(ScalarType.Float32);
        var processed = raw;
        if (parameters.Any(p => p.RepetitionPenalty != 1f))
        {
            var seen = TokenCounts(requests, vocab, device, r => r.PromptTokenIds.Concat(r.OutputTokenIds)).gt(HeldScalars.Zero);
            processed = LogitsProcessing.ApplyRepetitionPenalty(processed, seen, Column(parameters.Select(p => p.RepetitionPenalty), device));
        }
        if (parameters.Any(p => p.PresencePenalty != 0f || p.FrequencyPenalty != 0f))
        {
            var counts = TokenCounts(requests, vocab, device, r => r.OutputTokenIds);
            processed = LogitsProcessing.ApplyPresenceFrequencyPenalties(processed, counts,
                Column(parameters.Select(p => p.PresencePenalty), device), Column(parameters.Select(p => p.FrequencyPenalty), device));
        }
        if (requests.Any(r => r.OutputTokenIds.Count < r.Sampling.MinTokens))
        {
            var masked = TokenCounts(requests, vocab, device, r => r.OutputTokenIds.Count < r.Sampling.MinTokens
                ? (r.Sampling.IgnoreEos ? [] : eosTokenIds).Concat(r.Sampling.StopTokenIds)
                : []).gt(HeldScalars.Zero);
            processed = LogitsProcessing.MaskTokens(processed, masked);
        }
        if (parameters.Any(p => p.Constraint is not null)) processed = ApplyConstraints(processed, requests, vocab, device);

        var greedy = parameters.Select(p => p.Temperature < GreedyBelow).ToArray();
        var tokens = LogitsProcessing.ArgMax(processed);
        if (greedy.Any(g => !g))
        {
            var scaled = LogitsProcessing.ApplyTemperature(processed.to(ScalarType.Float64),
                Column(parameters.Select(p => p.Temperature < GreedyBelow ? 1f : p.Temperature), device, ScalarType.Float64));
            if (parameters.Any(p => p.Temperature >= GreedyBelow && (p.TopK > 0 || p.TopP < 1f)))
                scaled = LogitsProcessing.ApplyTopKTopP(scaled,
                    tensor(parameters.Select(p => (long)p.TopK).ToArray(), device: device).unsqueeze(1),
                    Column(parameters.Select(p => p.TopP), device, ScalarType.Float64));
            var drawn = LogitsProcessing.SampleFromLogits(scaled, tensor(uniform, device: device));
            tokens = where(tensor(greedy, device: device), tokens, drawn);
        }

        var ids = (tokens.device_type == DeviceType.CPU ? tokens : tokens.cpu()).data<long>().ToArray();
        var result = new SampledToken[rows];
        var wanting = Enumerable.Range(0, rows).Where(r => parameters[r].Logprobs is not null).ToArray();
        SampledLogprobs[] logprobs = [];
        if (wanting.Length > 0)
        {
            var index = tensor(wanting.Select(r => (long)r).ToArray(), device: device);
            logprobs = LogprobCalculator.Compute(raw.index_select(0, index), tokens.index_select(0, index),
                wanting.Select(r => parameters[r].Logprobs!.Value).ToArray());
        }
        for (var r = 0; r < rows; r++) result[r] = new SampledToken((int)ids[r], null);
        for (var i = 0; i < wanting.Length; i++) result[wanting[i]] = result[wanting[i]] with { Logprobs = logprobs[i] };
        return result;
    }

    /// <summary>
    /// Rows of requests with a <c>response_format</c> keep only the tokens their grammar allows
    /// (<see cref="ConstraintCursor.Allowed"/>, with the request's remaining token budget); the other
    /// rows are untouched. The host picks each row's rule; the mask is built on the logits' device.
    /// </summary>
    private Tensor ApplyConstraints(Tensor logits, IReadOnlyList<EngineRequest> requests, int vocab, Device device)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var rows = Enumerable.Range(0, requests.Count).Where(r => requests[r].Sampling.Constraint is not null).ToArray();
        var rules = new MaskRule[rows.Length];
        for (var i = 0; i < rows.Length; i++)
        {
            var request = requests[rows[i]];
            if (!_cursors.TryGetValue(request.Id, out var cursor))
            {
                cursor = request.Sampling.Constraint!.Start();
                _cursors[request.Id] = cursor;
            }
            cursor.Advance(request.OutputTokenIds);
            var left = (request.Sampling.MaxTokens ?? int.MaxValue) - request.OutputTokenIds.Count;
            rules[i] = cursor.Next(Math.Max(1, left), vocab);
        }
        // Before any copy to the device, which would wait for the forward still running there.
        LastMaskElapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started);
        var refused = _masks.Refused(rules, vocab, device);
        if (rows.Length == requests.Count) return LogitsProcessing.MaskTokens(logits, refused);
        var index = tensor(rows.Select(r => (long)r).ToArray(), device: device);
        return logits.index_copy(0, index, LogitsProcessing.MaskTokens(logits.index_select(0, index), refused));
    }

    /// <summary>Frees the constrained rows' device masks.</summary>
    public void Dispose() => _masks.Dispose();

    private Random Generator(EngineRequest request)
    {
        if (!_generators.TryGetValue(request.Id, out var generator))
        {
            generator = new Random(request.Sampling.Seed is { } seed ? (int)(seed ^ (seed >> 32)) : Random.Shared.Next());
            _generators[request.Id] = generator;
        }
        return generator;
    }

    /// <summary>Per row, how often each token id occurs in <paramref name="tokensOf"/>(request): <c>[rows, vocab]</c> float32. Ids outside the vocabulary are ignored.</summary>
    private static Tensor TokenCounts(IReadOnlyList<EngineRequest> requests, int vocab, Device device, Func<EngineRequest, IEnumerable<int>> tokensOf)
    {
        var flat = new List<long>();
        for (var r = 0; r < requests.Count; r++)
            foreach (var id in tokensOf(requests[r]))
                if ((uint)id < (uint)vocab) flat.Add(((long)r * vocab) + id);
        var counts = zeros(requests.Count * (long)vocab, ScalarType.Float32, device);
        if (flat.Count > 0)
        {
            var index = tensor(flat.ToArray(), device: device);
            counts = counts.scatter_add(0, index, ones(flat.Count, ScalarType.Float32, device));
        }
        return counts.view(requests.Count, vocab);
    }

    private static Tensor Column(IEnumerable<float> values, Device device, ScalarType dtype = ScalarType.Float32) =>
        tensor(values.ToArray(), device: device).to(dtype).unsqueeze(1);
}
