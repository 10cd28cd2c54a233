using DeepSeek.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Engine.Sampling;

/// <summary>
/// The steps between a batch of logits rows <c>[rows, vocab]</c> and sampled tokens, on whatever
/// device the rows are. Each row has its own parameters (tensors of <c>[rows, 1]</c> or <c>[rows]</c>),
/// and every operation is row-wise, so a row's result never depends on the other rows. Masked tokens
/// become negative infinity. Order in <see cref="Sampler"/>: penalties, min_tokens mask, temperature,
/// top-k, top-p (vLLM's order). Each function returns a new tensor; the caller's dispose scope owns it.
/// No temporary Scalar reaches LibTorch (<see cref="HeldScalars"/> says why).
/// </summary>
public static class LogitsProcessing
{
    /// <summary>Hugging Face's repetition penalty: for each seen token, a positive logit is divided by the penalty, a negative one multiplied.</summary>
    public static Tensor ApplyRepetitionPenalty(Tensor logits, Tensor seen, Tensor penalty)
    {
        ArgumentNullException.ThrowIfNull(logits);
        return where(seen, where(logits.lt(HeldScalars.Zero), logits * penalty, logits / penalty), logits);
    }

    /// <summary>OpenAI's penalties over generated tokens: logit −= count × frequency + (count &gt; 0) × presence.</summary>
    public static Tensor ApplyPresenceFrequencyPenalties(Tensor logits, Tensor outputCounts, Tensor presence, Tensor frequency)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(outputCounts);
        return logits - (outputCounts * frequency) - (outputCounts.gt(HeldScalars.Zero).to(logits.dtype) * presence);
    }

    public static Tensor MaskTokens(Tensor logits, Tensor masked)
    {
        ArgumentNullException.ThrowIfNull(logits);
        return logits.masked_fill(masked, HeldScalars.NegativeInfinity);
    }

    public static Tensor ApplyTemperature(Tensor logits, Tensor temperature)
    {
        ArgumentNullException.ThrowIfNull(logits);
        return logits / temperature;
    }

    /// <summary>
    /// Top-k then top-p, from one sort of each row. Top-k keeps the <c>k</c> largest logits and any
    /// tied with the k-th (as vLLM); <c>k</c> of 0 or the vocabulary keeps all. Top-p, over what top-k
    /// kept: in order of decreasing probability (ties by token id), a token is kept while the
    /// probability of the tokens before it is below <c>p</c>; the most likely token always stays.
    /// </summary>
    /// <param name="logits"><c>[rows, vocab]</c>, float64 for a stable cumulative sum.</param>
    /// <param name="topK"><c>[rows, 1]</c> int64, 0 for off.</param>
    /// <param name="topP"><c>[rows, 1]</c>, 1 for off.</param>
    public static Tensor ApplyTopKTopP(Tensor logits, Tensor topK, Tensor topP)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(topK);
        var vocab = logits.shape[1];
        // A stable descending sort keeps equal logits in token-id order: the tie rule of both filters.
        var (sorted, order) = logits.sort(dim: 1, descending: true, stable: true);
        using var vocabScalar = vocab.ToScalar();
        var k = where(topK.le(HeldScalars.Zero).logical_or(topK.gt(vocabScalar)), tensor(vocab, device: logits.device), topK);
        var kth = sorted.gather(1, k - HeldScalars.One);
        var keptSorted = sorted.masked_fill(sorted.lt(kth), HeldScalars.NegativeInfinity);
        var probabilities = keptSorted.softmax(1);
        var before = probabilities.cumsum(1) - probabilities;
        keptSorted = keptSorted.masked_fill(before.ge(topP), HeldScalars.NegativeInfinity);
        return full_like(logits, HeldScalars.NegativeInfinity).scatter(1, order, keptSorted);
    }

    /// <summary>The largest logit's token per row; the lowest id among ties.</summary>
    public static Tensor ArgMax(Tensor logits)
    {
        ArgumentNullException.ThrowIfNull(logits);
        return logits.argmax(1);
    }

    /// <summary>
    /// Draws one token per row from softmax(row) by inverse CDF over token ids in order, with
    /// <paramref name="uniform"/> <c>[rows]</c> in [0, 1): the first token whose cumulative probability
    /// exceeds the draw. A masked token has probability 0 and is never drawn.
    /// </summary>
    public static Tensor SampleFromLogits(Tensor logits, Tensor uniform)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(uniform);
        var cumulative = logits.to(ScalarType.Float64).softmax(1).cumsum(1);
        var target = uniform.to(ScalarType.Float64).unsqueeze(1) * cumulative.narrow(1, cumulative.shape[1] - 1, 1);
        using var lastToken = (logits.shape[1] - 1).ToScalar();
        return cumulative.le(target).sum(1).clamp_max(lastToken);
    }
}
