namespace DeepSeek.Engine.KvCache;

/// <summary>A request's KV blocks in token order: token at position p lives in block p / blockSize.</summary>
public sealed class BlockTable
{
    private readonly List<int> _blockIds = [];

    public IReadOnlyList<int> BlockIds => _blockIds;

    public int Count => _blockIds.Count;

    /// <summary>The pool slot of a token: blockId * blockSize + offset in block.</summary>
    public long SlotOf(int position, int blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        var block = position / blockSize;
        if (block >= _blockIds.Count)
            throw new InvalidOperationException($"Position {position} is beyond the {_blockIds.Count} blocks allocated to this request.");
        return ((long)_blockIds[block] * blockSize) + (position % blockSize);
    }

    internal void Add(int blockId) => _blockIds.Add(blockId);

    internal void Clear() => _blockIds.Clear();

    /// <summary>Blocks needed to hold <paramref name="numTokens"/> tokens.</summary>
    public static int BlocksFor(int numTokens, int blockSize) => (numTokens + blockSize - 1) / blockSize;
}
