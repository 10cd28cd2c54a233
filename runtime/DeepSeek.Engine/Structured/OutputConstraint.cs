namespace DeepSeek.Engine.Structured;

/// <summary>
/// A compiled response format: the grammar of the documents it accepts over one tokenizer's
/// vocabulary, with the token masks of the grammar states met so far. Shared by every request with the
/// same schema (<see cref="StructuredOutputs"/> caches it by its normalised text); the masks are
/// computed on the engine thread and cached per state, bounded in bytes.
/// </summary>
public sealed class OutputConstraint
{
    /// <summary>Bytes of cached masks one constraint may hold (4 bytes per allowed token of a state).</summary>
    public const long MaskCacheBytes = 16L << 20;

    private readonly Dictionary<GrammarState, TokenMask> _masks = [];
    private readonly Lock _lock = new();
    private long _cachedBytes;

    internal OutputConstraint(JsonNode root, TokenVocabulary vocabulary, string description)
    {
        Root = root;
        Vocabulary = vocabulary;
        Description = description;
        Initial = GrammarState.Initial(root);
    }

    /// <summary>What the client asked for, for logs: <c>json_object</c> or <c>json_schema 'name'</c>.</summary>
    public string Description { get; }

    /// <summary>Fewest bytes of a whole document: with fewer tokens allowed, generation cannot end with one.</summary>
    public int MinimumLength => Initial.Distance;

    internal JsonNode Root { get; }

    internal TokenVocabulary Vocabulary { get; }

    internal GrammarState Initial { get; }

    /// <summary>Masks computed (cache misses) and served from the cache since start: for the bench and tests.</summary>
    public long MasksComputed { get; private set; }

    public long MasksCached { get; private set; }

    /// <summary>A new request's position: before the first byte.</summary>
    public ConstraintCursor Start() => new(this);

    internal TokenMask MaskOf(GrammarState state)
    {
        lock (_lock)
        {
            if (_masks.TryGetValue(state, out var cached))
            {
                MasksCached++;
                return cached;
            }
        }
        var mask = TokenMask.Compute(state, Vocabulary);
        lock (_lock)
        {
            MasksComputed++;
            if (_cachedBytes + mask.Bytes > MaskCacheBytes)
            {
                _masks.Clear();
                _cachedBytes = 0;
            }
            if (_masks.TryAdd(state, mask)) _cachedBytes += mask.Bytes;
        }
        return mask;
    }
}

/// <summary>
/// The tokens that keep one grammar state a valid prefix: for each, how many bytes would then still
/// be needed to finish the document; sorted by that distance so that a token budget selects a prefix.
/// </summary>
internal sealed class TokenMask
{
    private TokenMask(int[] ids, int[] distances, bool complete)
    {
        Ids = ids;
        Distances = distances;
        Complete = complete;
    }

    public int[] Ids { get; }

    public int[] Distances { get; }

    /// <summary>The state is a whole document: end-of-sequence is allowed.</summary>
    public bool Complete { get; }

    public long Bytes => (Ids.Length * 8L) + 64;

    /// <summary>The largest distance any of <see cref="Ids"/> leaves; 0 for none.</summary>
    public int MaxDistance => Distances.Length == 0 ? 0 : Distances[^1];

    /// <summary>No token: the mask of a dead output (only end-of-sequence may follow).</summary>
    public static TokenMask None { get; } = new([], [], complete: false);

    /// <summary>How many of <see cref="Ids"/> leave a document no more than <paramref name="distance"/> bytes from its end.</summary>
    public int CountWithin(int distance)
    {
        // The first index whose distance exceeds it: a prefix, since the ids are sorted by distance.
        int low = 0, high = Distances.Length;
        while (low < high)
        {
            var middle = low + ((high - low) >> 1);
            if (Distances[middle] <= distance) low = middle + 1;
            else high = middle;
        }
        return low;
    }

    public static TokenMask Compute(GrammarState state, TokenVocabulary vocabulary)
    {
        var found = new List<(int Id, int Distance)>();
        if (!state.IsDead) new Walker(vocabulary, found).Walk(0, state);
        // Counting sort by distance (small integers): linear in the allowed tokens.
        var maxDistance = 0;
        foreach (var (_, distance) in found) maxDistance = Math.Max(maxDistance, distance);
        var start = new int[maxDistance + 2];
        foreach (var (_, distance) in found) start[distance + 1]++;
        for (var d = 1; d < start.Length; d++) start[d] += start[d - 1];
        var ids = new int[found.Count];
        var distances = new int[found.Count];
        foreach (var (id, distance) in found)
        {
            var at = start[distance]++;
            ids[at] = id;
            distances[at] = distance;
        }
        return new TokenMask(ids, distances, state.IsComplete);
    }

    /// <summary>
    /// Depth-first over the vocabulary's trie: a prefix the grammar refuses cuts every token under it.
    /// Transitions are memoised for the walk over interned states: inside a string almost every byte
    /// leads back to the same state, so most trie nodes cost one lookup instead of a grammar step.
    /// </summary>
    private sealed class Walker(TokenVocabulary vocabulary, List<(int, int)> found)
    {
        private readonly Dictionary<(GrammarState, byte), GrammarState> _steps = [];
        private readonly Dictionary<GrammarState, GrammarState> _interned = [];

        public void Walk(int node, GrammarState state)
        {
            var bytes = vocabulary.ChildBytes(node);
            for (var i = 0; i < bytes.Length; i++)
            {
                var next = Step(state, bytes[i]);
                if (next.IsDead) continue;
                var child = vocabulary.ChildNode(node, i);
                foreach (var id in vocabulary.TokensAt(child)) found.Add((id, next.Distance));
                Walk(child, next);
            }
        }

        private GrammarState Step(GrammarState state, byte b)
        {
            if (_steps.TryGetValue((state, b), out var next)) return next;
            next = state.Step(b);
            if (!_interned.TryGetValue(next, out var canonical))
            {
                canonical = next;
                _interned[next] = next;
            }
            _steps[(state, b)] = canonical;
            return canonical;
        }
    }
}

/// <summary>
/// One request's position in its constraint, advanced by the tokens it has sampled. Lives on the
/// engine thread, beside the request's random generator.
/// </summary>
public sealed class ConstraintCursor
{
    private readonly OutputConstraint _constraint;
    private GrammarState _state;
    private int _consumed;

    internal ConstraintCursor(OutputConstraint constraint)
    {
        _constraint = constraint;
        _state = constraint.Initial;
    }

    /// <summary>The output so far is a whole document.</summary>
    public bool IsComplete => _state.IsComplete;

    /// <summary>The output left the grammar (only a token the mask did not allow can do that).</summary>
    public bool IsDead => _state.IsDead;

    /// <summary>Bytes still needed to finish a document.</summary>
    public int Distance => _state.Distance;

    /// <summary>Takes in the output tokens not seen yet; an end-of-sequence id changes nothing, a special token breaks the document.</summary>
    public void Advance(IReadOnlyList<int> outputTokenIds)
    {
        ArgumentNullException.ThrowIfNull(outputTokenIds);
        var vocabulary = _constraint.Vocabulary;
        for (; _consumed < outputTokenIds.Count; _consumed++)
        {
            var id = outputTokenIds[_consumed];
            if (vocabulary.EndOfSequenceIds.Contains(id)) continue;
            var bytes = vocabulary.BytesOf(id);
            _state = bytes is null ? GrammarState.Dead : _state.Step(bytes);
        }
    }

    /// <summary>
    /// The ids the next token may be, below <paramref name="width"/> (the logits' columns), with
    /// <paramref name="tokensLeft"/> tokens of budget including this one: a token is allowed when it
    /// keeps the output a valid prefix and, where every ASCII character is a token, leaves a document
    /// that the rest of the budget can still finish and end (one token per byte still missing, plus
    /// end-of-sequence); end-of-sequence once the document is whole. When
    /// no token can finish within the budget, the budget is set aside (the output then ends at
    /// <c>length</c>, unfinished).
    /// </summary>
    public void Allowed(int tokensLeft, int width, Span<bool> allowed)
    {
        allowed.Clear();
        var rule = Next(tokensLeft, width);
        var mask = rule.Mask;
        var count = mask.CountWithin(rule.MaxDistance);
        for (var i = 0; i < count; i++)
            if (mask.Ids[i] < width) allowed[mask.Ids[i]] = true;
        if (rule.EndAllowed) AllowEndOfSequence(width, allowed);
    }

    /// <summary>
    /// The choice <see cref="Allowed"/> makes, as a rule the device can apply without the host walking the
    /// vocabulary: the state's mask, the greatest distance a token may leave (every allowed token where the
    /// budget does not bind, none when the output is dead), and whether end-of-sequence may come.
    /// </summary>
    internal MaskRule Next(int tokensLeft, int width)
    {
        if (_state.IsDead) return new MaskRule(TokenMask.None, -1, EndAllowed: true, (_constraint, GrammarState.Dead));
        var mask = _constraint.MaskOf(_state);
        var maxDistance = MaskRule.Unbounded;
        if (_constraint.Vocabulary.EveryAsciiByteIsAToken)
        {
            // One token for this one and one for end-of-sequence: a whole document also needs to end.
            var within = mask.CountWithin(tokensLeft - 2);
            if (within > 0 || mask.Complete) maxDistance = tokensLeft - 2;
        }
        var any = false;
        var count = mask.CountWithin(maxDistance);
        for (var i = 0; i < count && !any; i++) any = mask.Ids[i] < width;
        // A whole document may end; and should no token of the model's width continue it (a vocabulary
        // whose needed tokens all lie past the logits), ending beats sampling from nothing.
        return new MaskRule(mask, maxDistance, mask.Complete || !any, (_constraint, _state));
    }

    private void AllowEndOfSequence(int width, Span<bool> allowed)
    {
        foreach (var eos in _constraint.Vocabulary.EndOfSequenceIds)
            if ((uint)eos < (uint)width) allowed[eos] = true;
    }
}

/// <summary>
/// One row's token mask for one step: tokens of <paramref name="Mask"/> that leave at most
/// <paramref name="MaxDistance"/> bytes to finish the document, plus end-of-sequence when
/// <paramref name="EndAllowed"/> (the constraint's vocabulary's). <paramref name="Key"/> names the mask for
/// caches that outlive the constraint's own (a state's mask is the same whenever it is computed).
/// </summary>
internal readonly record struct MaskRule(TokenMask Mask, int MaxDistance, bool EndAllowed, (OutputConstraint Constraint, GrammarState State) Key)
{
    /// <summary>A distance no token reaches: the budget does not bind.</summary>
    public const int Unbounded = int.MaxValue - 1;
}
