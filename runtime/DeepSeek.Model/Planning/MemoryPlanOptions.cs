namespace DeepSeek.Model.Planning;

/// <summary>
/// What a memory plan assumes besides the model and the GPU: the serve settings that decide how much
/// of a rank's memory goes to the KV cache and how much of it must be there.
/// </summary>
/// <param name="RedundantExperts">Extra copies of routed experts per MoE layer (serve's <c>--redundant-experts</c>).</param>
/// <param name="KvCacheMemoryFraction">Share of the memory after the weights that serve gives the KV cache (<c>--kv-cache-memory-fraction</c>).</param>
/// <param name="ContextTokens">Tokens one sequence may reach; a plan fits when the KV cache holds at least one such sequence, as serve requires.</param>
/// <param name="KvCacheElementBytes">Bytes of one cached value: the cache is held in the bf16 activation dtype whatever the weight format.</param>
public sealed record MemoryPlanOptions(int RedundantExperts, double KvCacheMemoryFraction, int ContextTokens, int KvCacheElementBytes = 2)
{
    /// <summary>Checks the numbers; a plan of nonsense would print a confident table.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegative(RedundantExperts);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ContextTokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(KvCacheElementBytes);
        if (!(KvCacheMemoryFraction > 0 && KvCacheMemoryFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(KvCacheMemoryFraction), KvCacheMemoryFraction, "The KV cache fraction must be in (0, 1].");
    }
}
