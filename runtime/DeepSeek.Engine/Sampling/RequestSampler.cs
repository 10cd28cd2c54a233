using System.Buffers;
using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.Sampling;

/// <summary>
/// Sampling state of one request: its parameters, the tokens it has seen (for penalties) and its own
/// random generator, advanced exactly once per sampled token. Nothing is shared between requests, so
/// a request's tokens do not depend on what else is batched with it or in which order rows are sampled.
/// </summary>
public sealed class RequestSampler
{
    private readonly SamplingParameters _parameters;
    private readonly Random _random;
    private readonly HashSet<int> _seen;
    private readonly Dictionary<int, int> _outputCounts = [];
    private readonly int[] _maskedBeforeMinTokens;
    private int _generated;

    /// <summary>
    /// <paramref name="promptTokenIds"/> feed the repetition penalty; <paramref name="eosTokenIds"/> are
    /// masked with the stop token ids until <c>min_tokens</c> are out.
    /// </summary>
    public RequestSampler(SamplingParameters parameters, IReadOnlyList<int> promptTokenIds, IReadOnlyList<int> eosTokenIds)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(promptTokenIds);
        ArgumentNullException.ThrowIfNull(eosTokenIds);
        _parameters = parameters;
        _random = new Random(parameters.Seed is { } seed ? (int)(seed ^ (seed >> 32)) : Random.Shared.Next());
        _seen = [.. promptTokenIds];
        _maskedBeforeMinTokens = [.. (parameters.IgnoreEos ? [] : eosTokenIds).Concat(parameters.StopTokenIds).Distinct()];
    }

    public int NumGenerated => _generated;

    /// <summary>Picks the next token from the model's logits row and records it as generated.</summary>
    public SampledToken Sample(ReadOnlySpan<float> rawLogits)
    {
        var buffer = ArrayPool<float>.Shared.Rent(rawLogits.Length);
        try
        {
            var logits = buffer.AsSpan(0, rawLogits.Length);
            rawLogits.CopyTo(logits);
            LogitsProcessing.ApplyRepetitionPenalty(logits, _seen, _parameters.RepetitionPenalty);
            LogitsProcessing.ApplyPresenceFrequencyPenalties(logits, _outputCounts, _parameters.PresencePenalty, _parameters.FrequencyPenalty);
            if (_generated < _parameters.MinTokens) LogitsProcessing.MaskTokens(logits, _maskedBeforeMinTokens);

            // One draw per token whatever the mode, so the generator's position is the token's index.
            var uniform = _random.NextDouble();
            int token;
            if (_parameters.Temperature < 1e-5f) token = LogitsProcessing.ArgMax(logits);
            else
            {
                LogitsProcessing.ApplyTemperature(logits, _parameters.Temperature);
                LogitsProcessing.ApplyTopK(logits, _parameters.TopK);
                LogitsProcessing.ApplyTopP(logits, _parameters.TopP);
                token = LogitsProcessing.SampleFromLogits(logits, uniform);
            }

            var logprobs = _parameters.Logprobs is { } k ? LogprobCalculator.Compute(rawLogits, token, k) : null;
            Record(token);
            return new SampledToken(token, logprobs);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buffer);
        }
    }

    private void Record(int token)
    {
        _generated++;
        _seen.Add(token);
        _outputCounts[token] = _outputCounts.GetValueOrDefault(token) + 1;
    }
}
