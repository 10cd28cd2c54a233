using DeepSeek.Model.Modeling;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Support;

/// <summary>
/// Greedy continuation straight through <see cref="DeepSeekForCausalLM.Forward"/> with one contiguous
/// cache: the prompt in one forward, then one token per forward. The reference the model tests check
/// decoding against, independent of the serving engine's paged cache and sampler.
/// </summary>
public static class GreedyDecoding
{
    /// <param name="model">The model, materialised.</param>
    /// <param name="prompt">Token ids of the prompt.</param>
    /// <param name="count">Tokens to generate.</param>
    /// <param name="beforeForward">Called with each forward's token count before it runs (a lockstep rank's agreement).</param>
    public static long[] Cached(DeepSeekForCausalLM model, IReadOnlyList<long> prompt, int count, Action<int>? beforeForward = null)
    {
        using var cache = model.CreateCache(prompt.Count + count);
        var generated = new List<long>(count);
        IReadOnlyList<long> next = prompt;
        var position = 0;
        for (var step = 0; step < count; step++)
        {
            using var scope = NewDisposeScope();
            beforeForward?.Invoke(next.Count);
            using var output = model.Forward(ForwardBatch.Contiguous(next, position), cache);
            position += next.Count;
            var token = output.Logits[-1].argmax().item<long>();
            generated.Add(token);
            next = [token];
        }
        return generated.ToArray();
    }
}
