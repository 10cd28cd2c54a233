using DeepSeek.Engine.KvCache;

namespace DeepSeek.Engine.Tests.KvCache;

public sealed class PrefixCacheTests
{
    private static List<BlockHash> Hashes(int[] tokens, int blockSize)
    {
        var hashes = new List<BlockHash>();
        PrefixCache.ExtendBlockHashes(i => tokens[i], tokens.Length, blockSize, hashes);
        return hashes;
    }

    [Fact]
    public void Hashes_chain_over_the_whole_prefix_and_cover_full_blocks_only()
    {
        var hashes = Hashes([1, 2, 3, 4, 5, 6, 7, 8, 9], 4);
        Assert.Equal(2, hashes.Count);
        Assert.Equal(BlockHash.Of(null, [1, 2, 3, 4]), hashes[0]);
        Assert.Equal(BlockHash.Of(hashes[0], [5, 6, 7, 8]), hashes[1]);

        // The same block after a different prefix is a different entry.
        var other = Hashes([9, 9, 9, 9, 5, 6, 7, 8], 4);
        Assert.NotEqual(hashes[1], other[1]);
        Assert.NotEqual(BlockHash.Of(null, [5, 6, 7, 8]), hashes[1]);
        Assert.Equal(hashes, Hashes([1, 2, 3, 4, 5, 6, 7, 8], 4));
    }

    [Fact]
    public void Lookup_returns_the_longest_cached_prefix_within_the_limit()
    {
        var pool = new KvBlockPool(8, 4);
        var cache = new PrefixCache(pool);
        var tokens = Enumerable.Range(1, 12).ToArray();
        var hashes = Hashes(tokens, 4);
        var blocks = new List<int>();
        pool.TryAllocate(3, blocks);
        for (var i = 0; i < 3; i++) pool.TryCache(blocks[i], hashes[i]);

        var hit = cache.FindLongestPrefix(hashes, maxTokens: 11);
        Assert.Equal(blocks.Take(2), hit.BlockIds);
        Assert.Equal(8, hit.NumTokens);
        Assert.Equal(12, cache.FindLongestPrefix(hashes, 12).NumTokens);

        // A prompt that diverges in the second block hits the first only.
        var diverging = Hashes([1, 2, 3, 4, 5, 6, 0, 8, 9, 10, 11, 12], 4);
        Assert.Equal([blocks[0]], cache.FindLongestPrefix(diverging, 12).BlockIds);
        Assert.Same(PrefixCacheHit.None, cache.FindLongestPrefix(Hashes([7, 7, 7, 7, 7], 4), 5));
    }

    [Fact]
    public void Evicted_blocks_shorten_later_hits()
    {
        var pool = new KvBlockPool(3, 4);
        var cache = new PrefixCache(pool);
        var hashes = Hashes(Enumerable.Range(1, 12).ToArray(), 4);
        var blocks = new List<int>();
        pool.TryAllocate(3, blocks);
        for (var i = 0; i < 3; i++) pool.TryCache(blocks[i], hashes[i]);
        // Released tail first, as the scheduler does: the tail is evicted first.
        for (var i = 2; i >= 0; i--) pool.Release(blocks[i]);

        var taken = new List<int>();
        pool.TryAllocate(1, taken);
        Assert.Equal(blocks[2], taken[0]);
        Assert.Equal(8, cache.FindLongestPrefix(hashes, 12).NumTokens);
        pool.TryAllocate(1, taken);
        Assert.Equal(4, cache.FindLongestPrefix(hashes, 12).NumTokens);
    }

    [Fact]
    public void Statistics_count_tokens()
    {
        var cache = new PrefixCache(new KvBlockPool(1, 4));
        cache.RecordQuery(100, 64);
        cache.RecordQuery(50, 0);
        Assert.Equal(150, cache.QueriedTokens);
        Assert.Equal(64, cache.HitTokens);
        Assert.Equal(64.0 / 150, cache.HitRate, 12);
    }
}
