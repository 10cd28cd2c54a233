namespace DeepSeek.Engine.Telemetry;

/// <summary>Load balance of routed tokens over expert shards (ranks, or single experts before placement).</summary>
public static class ExpertLoad
{
    /// <summary>Max over mean of tokens per shard: 1 is perfectly even; 0 when nothing was routed.</summary>
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
