using DeepSeek.Model.Modeling;

namespace DeepSeek.Model.Generation;

/// <summary>
/// Generates one sequence with a private contiguous KV cache (slots 0..n-1): a prefill forward of
/// the prompt, then one forward of one token per step. The serving engine batches many sequences
/// over paged slots instead; this is the <c>generate</c> verb's loop.
/// </summary>
public sealed class SequenceGenerator(DeepSeekForCausalLM model)
{
    public GenerationResult Generate(IReadOnlyList<long> prompt, int maxNewTokens, SamplingOptions sampling,
        int logprobs = 0, IReadOnlyCollection<long>? stopTokenIds = null)
    {
        if (prompt.Count == 0) throw new ArgumentException("The prompt needs at least one token.", nameof(prompt));
        ArgumentOutOfRangeException.ThrowIfNegative(maxNewTokens);
        ArgumentOutOfRangeException.ThrowIfNegative(logprobs);
        var generated = new List<long>();
        var tokenLogprobs = logprobs > 0 ? new List<TokenLogprob>() : null;
        if (maxNewTokens == 0) return new GenerationResult(generated, tokenLogprobs);

        using var sampler = new TokenSampler(sampling);
        using var cache = model.CreateCache(prompt.Count + maxNewTokens);
        IReadOnlyList<long> step = prompt;
        var position = 0;
        while (generated.Count < maxNewTokens)
        {
            using var output = model.Forward(ForwardBatch.Contiguous(step, position), cache);
            using var last = output.Logits[-1];
            position += step.Count;
            var token = sampler.Next(last);
            generated.Add(token);
            tokenLogprobs?.Add(TokenSampler.Logprobs(last, token, logprobs));
            if (stopTokenIds?.Contains(token) == true) break;
            step = [token];
        }
        return new GenerationResult(generated, tokenLogprobs);
    }
}
