using DeepSeek.Engine.KvCache;

namespace DeepSeek.Engine.Tests.KvCache;

public sealed class KvBlockPoolTests
{
    private static BlockHash Hash(int n) => BlockHash.Of(null, [n]);

    [Fact]
    public void Allocates_until_empty_and_refuses_without_taking_anything()
    {
        var pool = new KvBlockPool(numBlocks: 4, blockSize: 16);
        var blocks = new List<int>();
        Assert.True(pool.TryAllocate(3, blocks));
        Assert.Equal(3, blocks.Distinct().Count());
        Assert.Equal(1, pool.NumFreeBlocks);
        Assert.Equal(0.75, pool.UsageRatio);

        var more = new List<int>();
        Assert.False(pool.TryAllocate(2, more));
        Assert.Empty(more);
        Assert.Equal(1, pool.NumFreeBlocks);

        blocks.ForEach(pool.Release);
        Assert.Equal(0, pool.UsageRatio);
        Assert.Equal(64, pool.CapacityTokens);
    }

    [Fact]
    public void A_shared_block_is_free_only_after_its_last_reference()
    {
        var pool = new KvBlockPool(2, 4);
        var blocks = new List<int>();
        pool.TryAllocate(1, blocks);
        var block = blocks[0];
        pool.Retain(block);
        Assert.Equal(2, pool.RefCount(block));

        pool.Release(block);
        Assert.Equal(1, pool.NumFreeBlocks);
        pool.Release(block);
        Assert.Equal(2, pool.NumFreeBlocks);
        Assert.Throws<InvalidOperationException>(() => pool.Release(block));
    }

    [Fact]
    public void Uncached_free_blocks_go_before_cached_ones_and_cached_ones_leave_least_recently_used_first()
    {
        var pool = new KvBlockPool(4, 4);
        var blocks = new List<int>();
        pool.TryAllocate(4, blocks);
        var (a, b, c, plain) = (blocks[0], blocks[1], blocks[2], blocks[3]);
        Assert.True(pool.TryCache(a, Hash(1)));
        Assert.True(pool.TryCache(b, Hash(2)));
        Assert.True(pool.TryCache(c, Hash(3)));
        pool.Release(b);
        pool.Release(a);
        pool.Release(c);
        pool.Release(plain);

        // b was released first, so it is the least recently used of the cached blocks.
        Assert.Equal(4, pool.NumFreeBlocks);
        Assert.Equal(3, pool.NumCachedBlocks);
        var taken = new List<int>();
        pool.TryAllocate(1, taken);
        Assert.Equal(plain, taken[0]);
        Assert.Equal(0, pool.NumEvictions);

        pool.TryAllocate(1, taken);
        Assert.Equal(b, taken[1]);
        Assert.Equal(1, pool.NumEvictions);
        Assert.False(pool.TryGetCachedBlock(Hash(2), out _));
        Assert.Null(pool.HashOf(b));

        // A hit on c makes it recently used: a is evicted before it.
        pool.Retain(c);
        pool.Release(c);
        pool.TryAllocate(1, taken);
        Assert.Equal(a, taken[2]);
        Assert.True(pool.TryGetCachedBlock(Hash(3), out var stillCached));
        Assert.Equal(c, stillCached);
    }

    [Fact]
    public void A_prefix_already_cached_in_another_block_is_not_cached_twice()
    {
        var pool = new KvBlockPool(2, 4);
        var blocks = new List<int>();
        pool.TryAllocate(2, blocks);
        Assert.True(pool.TryCache(blocks[0], Hash(1)));
        Assert.False(pool.TryCache(blocks[1], Hash(1)));
        Assert.True(pool.TryCache(blocks[0], Hash(1)));
        Assert.Null(pool.HashOf(blocks[1]));
        Assert.Throws<InvalidOperationException>(() =>
        {
            pool.Release(blocks[1]);
            pool.TryCache(blocks[1], Hash(5));
        });
    }
}
