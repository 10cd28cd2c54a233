namespace DeepSeek.Engine.Structured;

/// <summary>
/// The bytes every token id stands for, computed once per tokenizer, arranged as a trie so that one
/// walk of the grammar visits each shared prefix once. Special tokens (null bytes) are never allowed
/// inside a constrained document; the end-of-sequence ids end it. The engine does not know the
/// tokenizer: the host builds this from it.
/// </summary>
public sealed class TokenVocabulary
{
    private readonly int[] _childStart;
    private readonly byte[] _childByte;
    private readonly int[] _childNode;
    private readonly int[] _tokenStart;
    private readonly int[] _tokens;
    private readonly byte[]?[] _bytes;

    /// <param name="tokenBytes">Per id, the UTF-8 bytes it decodes to; null for special tokens and ids the tokenizer does not know.</param>
    /// <param name="endOfSequenceIds">The ids that end generation.</param>
    public TokenVocabulary(IReadOnlyList<byte[]?> tokenBytes, IReadOnlyList<int> endOfSequenceIds)
    {
        ArgumentNullException.ThrowIfNull(tokenBytes);
        ArgumentNullException.ThrowIfNull(endOfSequenceIds);
        Size = tokenBytes.Count;
        _bytes = [.. tokenBytes];
        EndOfSequenceIds = [.. endOfSequenceIds];
        // Build with dictionaries, then flatten into arrays (children sorted by byte, contiguous per node).
        var children = new List<SortedDictionary<byte, int>> { new() };
        var tokensAt = new List<List<int>?> { null };
        var singleBytes = new bool[256];
        for (var id = 0; id < tokenBytes.Count; id++)
        {
            var bytes = tokenBytes[id];
            if (bytes is not { Length: > 0 }) continue;
            if (bytes.Length == 1) singleBytes[bytes[0]] = true;
            var node = 0;
            foreach (var b in bytes)
            {
                if (!children[node].TryGetValue(b, out var child))
                {
                    child = children.Count;
                    children.Add([]);
                    tokensAt.Add(null);
                    children[node][b] = child;
                }
                node = child;
            }
            (tokensAt[node] ??= []).Add(id);
        }
        var count = children.Count;
        _childStart = new int[count + 1];
        _tokenStart = new int[count + 1];
        var edges = children.Sum(c => c.Count);
        _childByte = new byte[edges];
        _childNode = new int[edges];
        _tokens = new int[tokensAt.Sum(t => t?.Count ?? 0)];
        int e = 0, t = 0;
        for (var n = 0; n < count; n++)
        {
            _childStart[n] = e;
            foreach (var (b, child) in children[n])
            {
                _childByte[e] = b;
                _childNode[e] = child;
                e++;
            }
            _tokenStart[n] = t;
            foreach (var id in tokensAt[n] ?? []) _tokens[t++] = id;
        }
        _childStart[count] = e;
        _tokenStart[count] = t;
        NodeCount = count;
        // A printable ASCII byte without a token of its own would make the closing distance (bytes) no bound on tokens.
        EveryAsciiByteIsAToken = Enumerable.Range(0x20, 0x5F).All(b => singleBytes[b]);
    }

    /// <summary>Ids covered (the tokenizer's size); logits columns past it are never allowed in a constrained document.</summary>
    public int Size { get; }

    public IReadOnlyList<int> EndOfSequenceIds { get; }

    public int NodeCount { get; }

    /// <summary>Whether every printable ASCII character is a token: then a document this many bytes from its end is at most as many tokens from it.</summary>
    public bool EveryAsciiByteIsAToken { get; }

    internal ReadOnlySpan<byte> ChildBytes(int node) => _childByte.AsSpan(_childStart[node], _childStart[node + 1] - _childStart[node]);

    internal int ChildNode(int node, int index) => _childNode[_childStart[node] + index];

    internal ReadOnlySpan<int> TokensAt(int node) => _tokens.AsSpan(_tokenStart[node], _tokenStart[node + 1] - _tokenStart[node]);

    /// <summary>The bytes of <paramref name="id"/>; null for a special token or an id past the tokenizer.</summary>
    internal byte[]? BytesOf(int id) => (uint)id < (uint)_bytes.Length ? _bytes[id] : null;
}
