namespace DeepSeek.Model.Native;

/// <summary>
/// The batch sizes a decode step is captured at as CUDA graphs. A step of <c>n</c> sequences replays
/// the smallest bucket that holds <c>n</c>, its unused slots padded; a step larger than every bucket runs
/// eagerly. Few small buckets keep padding cheap where decode is launch-bound; above 8, steps of 8
/// (as the leading engines space them) bound the padding to under 8 rows.
/// </summary>
public sealed class DecodeGraphBuckets
{
    public DecodeGraphBuckets(IEnumerable<int> sizes)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        var sorted = sizes.Order().ToArray();
        if (sorted.Length == 0) throw new ArgumentException("At least one bucket size is needed.", nameof(sizes));
        if (sorted[0] < 1) throw new ArgumentException($"Bucket sizes must be at least 1, not {sorted[0]}.", nameof(sizes));
        for (var i = 1; i < sorted.Length; i++)
        {
            if (sorted[i] == sorted[i - 1]) throw new ArgumentException($"Bucket size {sorted[i]} is given twice.", nameof(sizes));
        }
        Sizes = sorted;
    }

    /// <summary>Ascending.</summary>
    public IReadOnlyList<int> Sizes { get; }

    public int Largest => Sizes[^1];

    /// <summary>1, 2, 4, 8, then every multiple of 8, up to and including <paramref name="maxBatch"/>.</summary>
    public static DecodeGraphBuckets UpTo(int maxBatch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatch, 1);
        var sizes = new List<int>();
        foreach (var size in new[] { 1, 2, 4 }.Concat(Enumerable.Range(1, maxBatch / 8).Select(k => 8 * k)))
        {
            if (size <= maxBatch) sizes.Add(size);
        }
        if (sizes[^1] != maxBatch) sizes.Add(maxBatch);
        return new DecodeGraphBuckets(sizes);
    }

    /// <summary>The bucket a decode step of <paramref name="batch"/> sequences replays, or null when it is larger than every bucket (run it eagerly).</summary>
    public int? For(int batch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        foreach (var size in Sizes)
        {
            if (size >= batch) return size;
        }
        return null;
    }

    /// <summary>
    /// The context length a decode step whose longest context is <paramref name="context"/> tokens
    /// is captured at: 256 · 2^k or 384 · 2^k (so at most half of the gathered context is padding),
    /// rounded up to whole blocks of <paramref name="blockSize"/>, since the step gathers its context
    /// through block tables.
    /// </summary>
    public static int ContextBucket(int context, int blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(context, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1);
        long bucket = 256;
        while (bucket < context) bucket = bucket % 3 == 0 ? bucket / 3 * 4 : bucket / 2 * 3;
        var blocks = (bucket + blockSize - 1) / blockSize;
        return (int)Math.Min(int.MaxValue / 2, blocks * blockSize);
    }

    /// <summary>
    /// Largest first: graphs sharing one pool then reuse the blocks the largest capture allocated,
    /// so all the buckets together cost about the largest one's memory.
    /// </summary>
    public IEnumerable<int> CaptureOrder => Sizes.Reverse();
}
