using DeepSeek.Model.Configuration;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// The largest Experts message a rank takes or sends: one MoE layer's exchange for a full step. A
/// Compute request carries at most every token of the step once (<c>--max-batch-tokens</c>, which every
/// rank of a group is given alike), each as its hidden state in the widest wire dtype (float32) plus its
/// k picks (an int64 id and a float32 weight each); the reply is smaller. Twice that, plus a MiB for
/// framing and the placement messages, leaves room without letting a caller name any size it likes.
/// </summary>
public static class ExpertMessageLimit
{
    private const int WidestElementBytes = sizeof(float);
    private const int PickBytes = sizeof(long) + sizeof(float);
    private const long FramingBytes = 1024 * 1024;

    /// <exception cref="ArgumentOutOfRangeException">The batch is not positive.</exception>
    public static int For(DeepSeekConfig config, int maxBatchTokens)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchTokens, 1);
        var perToken = (long)config.HiddenSize * WidestElementBytes + (long)Math.Max(1, config.NumExpertsPerTok) * PickBytes;
        var bytes = 2L * maxBatchTokens * perToken + FramingBytes;
        // gRPC message sizes are ints; a model and batch this large must lower --max-batch-tokens.
        return (int)Math.Min(bytes, int.MaxValue);
    }
}
