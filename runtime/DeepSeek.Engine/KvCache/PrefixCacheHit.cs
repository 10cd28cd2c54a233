namespace DeepSeek.Engine.KvCache;

/// <summary>The blocks of the longest cached prefix of a request, and how many tokens they cover.</summary>
public sealed record PrefixCacheHit(IReadOnlyList<int> BlockIds, int NumTokens)
{
    public static PrefixCacheHit None { get; } = new([], 0);
}
