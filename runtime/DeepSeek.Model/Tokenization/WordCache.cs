using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace DeepSeek.Model.Tokenization;

/// <summary>
/// Token ids of words already encoded, shared by the request handlers that encode concurrently.
/// Bounded in bytes, not entries: clients choose how long a word is, and an entry count let a few
/// megabyte-long "words" pin gigabytes for the life of the process. Words longer than
/// <see cref="MaxWordLength"/> are never kept (Hugging Face's BPE skips them too): they seldom repeat
/// and one would take a large share of the budget. Once full the cache takes no more entries, as Hugging
/// Face's does: what it holds stays valid, and evicting under hostile text would only add churn.
/// </summary>
internal sealed class WordCache(long capacityBytes)
{
    /// <summary>Characters of the byte-level word (one per UTF-8 byte) past which a word is not cached.</summary>
    public const int MaxWordLength = 256;

    /// <summary>The default budget: about 100,000 ordinary words, what the cache held before it counted bytes.</summary>
    public const long DefaultCapacityBytes = 16L * 1024 * 1024;

    /// <summary>The dictionary node, the string's and the array's headers, on 64-bit.</summary>
    private const int EntryOverheadBytes = 96;

    private readonly ConcurrentDictionary<string, int[]> _entries = new(StringComparer.Ordinal);
    private long _bytes;

    public long CapacityBytes => capacityBytes;

    /// <summary>What the entries held now cost, by <see cref="CostOf"/>; never above <see cref="CapacityBytes"/>.</summary>
    public long Bytes => Volatile.Read(ref _bytes);

    public int Count => _entries.Count;

    public bool TryGet(string word, [MaybeNullWhen(false)] out int[] ids) => _entries.TryGetValue(word, out ids);

    public void Add(string word, int[] ids)
    {
        if (word.Length > MaxWordLength) return;
        var cost = CostOf(word, ids);
        // Reserve the bytes before adding, so writers racing each other never take the total past the capacity.
        long before;
        do
        {
            before = Volatile.Read(ref _bytes);
            if (before + cost > capacityBytes) return;
        }
        while (Interlocked.CompareExchange(ref _bytes, before + cost, before) != before);
        if (!_entries.TryAdd(word, ids)) Interlocked.Add(ref _bytes, -cost);
    }

    /// <summary>Managed bytes an entry keeps alive: the word's UTF-16 characters, its ids and the overhead.</summary>
    public static long CostOf(string word, int[] ids) => EntryOverheadBytes + 2L * word.Length + 4L * ids.Length;
}
