using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.KvCache;

/// <summary>
/// Reuse of KV blocks between requests that share a prefix. Only full blocks are cached, keyed by the
/// chained <see cref="BlockHash"/>; the blocks themselves live in the <see cref="KvBlockPool"/>, which
/// evicts them least-recently-used when it needs room. Statistics count tokens: each admitted
/// request queries its prompt length and hits the tokens served from cache.
/// </summary>
public sealed class PrefixCache(KvBlockPool pool)
{
    public KvBlockPool Pool { get; } = pool;

    /// <summary>Prompt tokens looked up (one lookup per admitted request, its whole prompt).</summary>
    public long QueriedTokens { get; private set; }

    /// <summary>Prompt tokens found in the cache.</summary>
    public long HitTokens { get; private set; }

    public double HitRate => QueriedTokens == 0 ? 0 : (double)HitTokens / QueriedTokens;

    /// <summary>
    /// Extends <paramref name="hashes"/> to cover every full block among the first <paramref name="numTokens"/>
    /// tokens; the first block chains from <paramref name="root"/> (a LoRA adapter's, <see cref="BlockHash.ForAdapter"/>).
    /// </summary>
    public static void ExtendBlockHashes(Func<int, int> tokenAt, int numTokens, int blockSize, List<BlockHash> hashes, BlockHash? root = null)
    {
        var fullBlocks = numTokens / blockSize;
        Span<int> block = blockSize <= 1024 ? stackalloc int[blockSize] : new int[blockSize];
        for (var b = hashes.Count; b < fullBlocks; b++)
        {
            for (var i = 0; i < blockSize; i++) block[i] = tokenAt((b * blockSize) + i);
            hashes.Add(BlockHash.Of(b == 0 ? root : hashes[b - 1], block));
        }
    }

    /// <summary>
    /// The longest cached prefix among the request's first <paramref name="maxTokens"/> tokens. The
    /// scheduler passes all tokens but one, so the last token is always computed: its logits are needed.
    /// </summary>
    public PrefixCacheHit FindLongestPrefix(IReadOnlyList<BlockHash> blockHashes, int maxTokens)
    {
        var maxBlocks = Math.Min(blockHashes.Count, maxTokens / Pool.BlockSize);
        List<int>? blocks = null;
        for (var b = 0; b < maxBlocks; b++)
        {
            if (!Pool.TryGetCachedBlock(blockHashes[b], out var blockId)) break;
            (blocks ??= []).Add(blockId);
        }
        return blocks is null ? PrefixCacheHit.None : new PrefixCacheHit(blocks, blocks.Count * Pool.BlockSize);
    }

    public void RecordQuery(int queriedTokens, int hitTokens)
    {
        QueriedTokens += queriedTokens;
        HitTokens += hitTokens;
    }

    /// <summary>Offers the request's full, computed blocks not offered before to the cache.</summary>
    public void CacheComputedBlocks(EngineRequest request)
    {
        var fullComputed = Math.Min(request.NumComputedTokens / Pool.BlockSize, request.BlockTable.Count);
        if (fullComputed <= request.NumRegisteredBlocks) return;
        ExtendBlockHashes(request.TokenAt, request.NumComputedTokens, Pool.BlockSize, request.BlockHashes, request.PrefixRoot);
        for (var b = request.NumRegisteredBlocks; b < fullComputed; b++)
            Pool.TryCache(request.BlockTable.BlockIds[b], request.BlockHashes[b]);
        request.NumRegisteredBlocks = fullComputed;
    }
}

/// <summary>The blocks of the longest cached prefix of a request, and how many tokens they cover.</summary>
public sealed record PrefixCacheHit(IReadOnlyList<int> BlockIds, int NumTokens)
{
    public static PrefixCacheHit None { get; } = new([], 0);
}
