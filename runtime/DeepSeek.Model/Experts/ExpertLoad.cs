namespace DeepSeek.Model.Experts;

/// <summary>
/// How many routed (token, expert) picks each expert of one MoE layer received: what one forward
/// observed (<see cref="Modeling.ForwardOutput.ExpertLoads"/>), or a sum of many (the input of a placement).
/// </summary>
public sealed record ExpertLoad(int LayerIndex, long[] TokensPerExpert)
{
    /// <summary>
    /// The same picks per shard: per rank of the placement on a sharded model, per expert otherwise
    /// (the model fills it in; <c>deepseek_expert_load_imbalance_ratio</c> is over these).
    /// </summary>
    public long[] TokensPerShard { get; init; } = TokensPerExpert;

    /// <summary>
    /// Max over mean of tokens per shard (per rank of a placement, or per expert): 1 is perfectly
    /// even; 0 when nothing was routed.
    /// </summary>
    public static double ImbalanceRatio(ReadOnlySpan<long> tokensPerShard)
    {
        if (tokensPerShard.IsEmpty) return 0;
        long max = 0, sum = 0;
        foreach (var tokens in tokensPerShard)
        {
            max = Math.Max(max, tokens);
            sum += tokens;
        }
        return sum == 0 ? 0 : max / ((double)sum / tokensPerShard.Length);
    }
}
