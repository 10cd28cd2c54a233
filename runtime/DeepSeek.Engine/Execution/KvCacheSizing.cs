namespace DeepSeek.Engine.Execution;

/// <summary>
/// How many KV blocks the pool gets. <c>--kv-cache-blocks</c> wins; otherwise the fraction of the
/// device memory still free after the weights are loaded, divided by the bytes of one block. Never
/// more than the running requests can use (each at most the whole context), never fewer than one
/// full context, so an admitted request can always finish alone.
/// </summary>
public static class KvCacheSizing
{
    public static int NumBlocks(int? explicitBlocks, double memoryFraction, long freeBytes, long bytesPerBlock,
        int blockSize, int maxModelLength, int maxRunningRequests)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(bytesPerBlock, 1);
        var perContext = (maxModelLength + blockSize - 1) / blockSize;
        if (explicitBlocks is { } blocks)
        {
            if (blocks < 1) throw new ArgumentException($"--kv-cache-blocks must be at least 1, got {blocks}.");
            return blocks;
        }
        if (!(memoryFraction > 0 && memoryFraction <= 1))
            throw new ArgumentException($"--kv-cache-memory-fraction must be in (0, 1], got {memoryFraction}.");
        var useful = (long)perContext * maxRunningRequests;
        var affordable = (long)(Math.Max(0, freeBytes) * memoryFraction) / bytesPerBlock;
        var chosen = Math.Min(useful, affordable);
        if (chosen < perContext)
            throw new InvalidOperationException(
                $"{memoryFraction:0.##} of the {freeBytes / (1 << 20)} MiB free after loading the weights holds {affordable} KV blocks of {blockSize} tokens, "
                + $"fewer than one context of {maxModelLength} tokens needs ({perContext}). Raise --kv-cache-memory-fraction, give --kv-cache-blocks, or use a device with more memory.");
        return (int)Math.Min(chosen, int.MaxValue);
    }
}
