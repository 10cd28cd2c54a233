namespace DeepSeek.Model.Tokenization;

/// <summary>
/// The merges of a BPE model by token id, applied to a word as Hugging Face tokenizers applies them:
/// the adjacent pair of lowest rank first (the leftmost among equals), until no adjacent pair has a
/// merge. Candidate pairs wait in a priority queue over a linked list of symbols, so a word of n
/// symbols costs O(n log n); rescanning the whole word after every merge cost O(n × merges), seconds
/// for one long client-supplied word.
/// </summary>
internal sealed class BpeMerges
{
    private readonly Dictionary<long, (int Rank, int Merged)> _byPair;

    /// <param name="merges">Each merge as (left id, right id, merged id), in rank order; a repeated pair keeps its first rank.</param>
    public BpeMerges(IEnumerable<(int Left, int Right, int Merged)> merges)
    {
        ArgumentNullException.ThrowIfNull(merges);
        _byPair = [];
        var rank = 0;
        foreach (var (left, right, merged) in merges) _byPair.TryAdd(Key(left, right), (rank++, merged));
    }

    public int Count => _byPair.Count;

    /// <summary>The ids of <paramref name="symbols"/> (one initial symbol each) after every merge that applies; the array is reused.</summary>
    public int[] Apply(int[] symbols)
    {
        ArgumentNullException.ThrowIfNull(symbols);
        var n = symbols.Length;
        if (n < 2 || _byPair.Count == 0) return symbols;
        // A doubly linked list over the initial positions: a merged pair lives on at its left position.
        var previous = new int[n];
        var next = new int[n];
        var removed = new bool[n];
        for (var i = 0; i < n; i++)
        {
            previous[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        // Ordered by rank, then by position: the leftmost of equal pairs merges first.
        var queue = new PriorityQueue<(int At, int Rank), long>();
        void Consider(int at)
        {
            var right = next[at];
            if (right >= 0 && _byPair.TryGetValue(Key(symbols[at], symbols[right]), out var merge))
                queue.Enqueue((at, merge.Rank), ((long)merge.Rank << 32) | (uint)at);
        }
        for (var i = 0; i < n - 1; i++) Consider(i);

        var left = n;
        while (queue.TryDequeue(out var candidate, out _))
        {
            var at = candidate.At;
            if (removed[at]) continue;
            var right = next[at];
            // An entry is stale once either side merged with another neighbour; the pair's rank names it.
            if (right < 0 || !_byPair.TryGetValue(Key(symbols[at], symbols[right]), out var merge) || merge.Rank != candidate.Rank) continue;
            symbols[at] = merge.Merged;
            removed[right] = true;
            next[at] = next[right];
            if (next[at] >= 0) previous[next[at]] = at;
            left--;
            if (previous[at] >= 0) Consider(previous[at]);
            Consider(at);
        }

        var result = new int[left];
        for (int i = 0, j = 0; i >= 0; i = next[i]) result[j++] = symbols[i];
        return result;
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;
}
