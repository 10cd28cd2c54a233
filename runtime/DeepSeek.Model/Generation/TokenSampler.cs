using static TorchSharp.torch;

namespace DeepSeek.Model.Generation;

/// <summary>
/// Picks the next token from one row of logits: argmax at temperature 0, else softmax(logits / T)
/// after top-k and top-p (nucleus) filtering, drawn from a seeded generator so a seed reproduces a
/// run. Works on a float64 CPU copy of the row: the token id is needed on the host anyway.
/// </summary>
public sealed class TokenSampler : IDisposable
{
    private readonly SamplingOptions _options;
    private readonly Generator _random;

    public TokenSampler(SamplingOptions options)
    {
        options.Validate();
        _options = options;
        _random = new Generator(unchecked((ulong)(options.Seed ?? Random.Shared.NextInt64())));
    }

    /// <param name="logits">One row <c>[vocab]</c>, any dtype and device.</param>
    public long Next(Tensor logits)
    {
        using var scope = NewDisposeScope();
        var row = logits.to(ScalarType.Float64, CPU);
        if (_options.Temperature == 0) return row.argmax().item<long>();
        var scaled = row / _options.Temperature;
        if (_options.TopK > 0 && _options.TopK < scaled.shape[0])
        {
            var kth = scaled.topk(_options.TopK).values[-1];
            scaled = scaled.masked_fill(scaled.lt(kth), double.NegativeInfinity);
        }
        var probabilities = scaled.softmax(-1);
        if (_options.TopP < 1.0)
        {
            var (sorted, order) = probabilities.sort(-1, descending: true);
            // Keep the smallest prefix whose mass reaches top_p: drop a token when the mass before it already does.
            var before = sorted.cumsum(-1) - sorted;
            var drop = before.ge(_options.TopP);
            var keptSorted = sorted.masked_fill(drop, 0.0);
            probabilities = zeros_like(probabilities).scatter_(0, order, keptSorted);
        }
        return probabilities.multinomial(1, false, _random).item<long>();
    }

    /// <summary>The chosen token's log-probability and the <paramref name="top"/> best, from the unscaled logits.</summary>
    public static TokenLogprob Logprobs(Tensor logits, long chosen, int top)
    {
        using var scope = NewDisposeScope();
        var logprobs = logits.to(ScalarType.Float64, CPU).log_softmax(-1);
        var (values, ids) = logprobs.topk(Math.Min(top, (int)logprobs.shape[0]));
        var topValues = values.data<double>().ToArray();
        var topIds = ids.data<long>().ToArray();
        return new TokenLogprob(chosen, logprobs[chosen].item<double>(), topIds.Zip(topValues).ToArray());
    }

    public void Dispose() => _random.Dispose();
}
