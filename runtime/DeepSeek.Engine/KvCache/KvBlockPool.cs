namespace DeepSeek.Engine.KvCache;

/// <summary>
/// Bookkeeping for one preallocated pool of <c>NumBlocks × BlockSize</c> KV slots (the same block ids
/// index every layer's latent buffer). Blocks are reference-counted: a block shared by requests with a
/// common prefix is freed when the last one lets go. Unreferenced blocks wait in one free queue;
/// those that still hold a cached prefix stay findable by hash until allocation needs them, oldest
/// release first (LRU). Blocks holding nothing worth keeping are handed out before any cached one.
/// </summary>
public sealed class KvBlockPool
{
    private readonly int[] _refCounts;
    private readonly BlockHash?[] _hashes;
    private readonly LinkedListNode<int>?[] _freeNodes;
    // Front: next to be allocated. Uncached blocks go to the front, cached ones to the back.
    private readonly LinkedList<int> _free = new();
    private readonly Dictionary<BlockHash, int> _cached = [];

    public KvBlockPool(int numBlocks, int blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(numBlocks, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1);
        NumBlocks = numBlocks;
        BlockSize = blockSize;
        _refCounts = new int[numBlocks];
        _hashes = new BlockHash?[numBlocks];
        _freeNodes = new LinkedListNode<int>?[numBlocks];
        for (var id = 0; id < numBlocks; id++) _freeNodes[id] = _free.AddLast(id);
    }

    public int NumBlocks { get; }

    public int BlockSize { get; }

    public long CapacityTokens => (long)NumBlocks * BlockSize;

    /// <summary>Blocks no request references, cached or not: what an allocation can take.</summary>
    public int NumFreeBlocks => _free.Count;

    /// <summary>Blocks findable by hash (referenced or not).</summary>
    public int NumCachedBlocks => _cached.Count;

    /// <summary>Cached blocks dropped to make room.</summary>
    public long NumEvictions { get; private set; }

    /// <summary>Fraction of blocks referenced by requests (cached-but-free blocks count as free, as in vLLM).</summary>
    public double UsageRatio => 1.0 - ((double)_free.Count / NumBlocks);

    public int RefCount(int blockId) => _refCounts[blockId];

    public BlockHash? HashOf(int blockId) => _hashes[blockId];

    /// <summary>Takes <paramref name="count"/> free blocks (evicting the least recently used cached ones if needed), or none if there are not enough.</summary>
    public bool TryAllocate(int count, List<int> into)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > _free.Count) return false;
        for (var i = 0; i < count; i++)
        {
            var id = _free.First!.Value;
            RemoveFromFree(id);
            if (_hashes[id] is { } hash)
            {
                _cached.Remove(hash);
                _hashes[id] = null;
                NumEvictions++;
            }
            _refCounts[id] = 1;
            into.Add(id);
        }
        return true;
    }

    /// <summary>Adds a reference to a block (a prefix-cache hit); an unreferenced block leaves the free queue.</summary>
    public void Retain(int blockId)
    {
        if (_refCounts[blockId]++ == 0) RemoveFromFree(blockId);
    }

    /// <summary>Drops a reference. At zero the block becomes free; if it holds a cached prefix it stays findable until evicted.</summary>
    public void Release(int blockId)
    {
        if (_refCounts[blockId] <= 0)
            throw new InvalidOperationException($"Block {blockId} released more often than it was taken.");
        if (--_refCounts[blockId] > 0) return;
        _freeNodes[blockId] = _hashes[blockId] is null ? _free.AddFirst(blockId) : _free.AddLast(blockId);
    }

    public bool TryGetCachedBlock(BlockHash hash, out int blockId) => _cached.TryGetValue(hash, out blockId);

    /// <summary>
    /// Makes a full, computed block findable by its prefix hash. False when another block already holds
    /// that prefix (two requests computed it at once); this block then stays private to its request.
    /// </summary>
    public bool TryCache(int blockId, BlockHash hash)
    {
        if (_refCounts[blockId] <= 0)
            throw new InvalidOperationException($"Block {blockId} is not allocated; only a referenced block can be cached.");
        if (_hashes[blockId] is { } existing) return existing == hash;
        if (!_cached.TryAdd(hash, blockId)) return false;
        _hashes[blockId] = hash;
        return true;
    }

    private void RemoveFromFree(int blockId)
    {
        _free.Remove(_freeNodes[blockId]!);
        _freeNodes[blockId] = null;
    }
}
