using DeepSeek.Engine.Structured;
using DeepSeek.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Engine.Sampling;

/// <summary>
/// Constrained rows' token masks built where the logits are. Each grammar state's mask is uploaded once
/// as a row of one byte per token of the vocabulary: the bytes the token would leave to finish the
/// document (saturated at 254), 255 for a token the state refuses. A step's mask is those rows compared
/// with each row's budget, plus end-of-sequence where allowed: a few small kernels, where writing and
/// copying a vocabulary-wide mask per row on the host took 2.3 ms a step at 16 constrained rows of a
/// 102,400-token vocabulary. The rows are kept least-recently-used first out, bounded in bytes. Owned by
/// the engine thread.
/// </summary>
internal sealed class ConstraintMasks(long cacheBytes = ConstraintMasks.DefaultCacheBytes) : IDisposable
{
    /// <summary>Device bytes of cached rows (one byte a token of the vocabulary, per grammar state).</summary>
    public const long DefaultCacheBytes = 64L << 20;

    private const byte RefusedToken = 255;
    private const int Saturated = 254;

    private readonly Dictionary<(OutputConstraint Constraint, GrammarState State), Row> _rows = [];
    private int _width = -1;
    private Device? _device;
    private byte[] _staging = [];
    private long _clock;

    /// <summary>Rows uploaded since start (cache misses): for tests and benchmarks.</summary>
    public long RowsUploaded { get; private set; }

    /// <summary>Rows held now.</summary>
    public int RowsHeld => _rows.Count;

    /// <summary>Constraints whose rows are held now (at most <see cref="MaxConstraints"/>).</summary>
    public int ConstraintsHeld => _rows.Keys.Select(key => key.Constraint).Distinct().Count();

    /// <summary>
    /// <c>[rules, width]</c> booleans on <paramref name="device"/>, true where a row's token is refused:
    /// exactly the complement of <see cref="ConstraintCursor.Allowed"/> for the same rules.
    /// </summary>
    public Tensor Refused(IReadOnlyList<MaskRule> rules, int width, Device device)
    {
        if (width != _width || _device is null || _device.type != device.type || _device.index != device.index) Clear();
        (_width, _device) = (width, device);
        _clock++;
        var distances = new Tensor[rules.Count];
        var budgets = new int[rules.Count];
        for (var r = 0; r < rules.Count; r++)
        {
            var rule = rules[r];
            if (rule.MaxDistance >= Saturated && rule.MaxDistance < rule.Mask.MaxDistance)
            {
                // A budget that binds beyond the saturation (a document still hundreds of bytes from its end
                // with a budget just short of them): this step's row is written exactly, not cached.
                (distances[r], budgets[r]) = (Upload(rule.Mask, width, device, exactWithin: rule.MaxDistance), 0);
                continue;
            }
            distances[r] = RowOf(rule, rules);
            // Every token of the mask where the budget does not bind; none below zero (a dead output).
            budgets[r] = rule.MaxDistance >= rule.Mask.MaxDistance ? Saturated : rule.MaxDistance;
        }
        using var budget = tensor(budgets, device: device).unsqueeze(1);
        var allowed = stack(distances).le(budget);
        var ends = new List<long>();
        for (var r = 0; r < rules.Count; r++)
        {
            if (!rules[r].EndAllowed) continue;
            foreach (var id in rules[r].Key.Constraint.Vocabulary.EndOfSequenceIds)
                if ((uint)id < (uint)width) ends.Add(((long)r * width) + id);
        }
        if (ends.Count > 0)
        {
            using var index = tensor(ends.ToArray(), device: device);
            allowed.view(-1).index_fill_(0, index, HeldScalars.One);
        }
        return allowed.logical_not_();
    }

    private Tensor RowOf(MaskRule rule, IReadOnlyList<MaskRule> step)
    {
        if (_rows.TryGetValue(rule.Key, out var row))
        {
            row.LastUsed = _clock;
            return row.Distances;
        }
        if ((_rows.Count + 1L) * _width > cacheBytes) Evict(step, _ => true, untilUnderBound: true);
        var constraint = rule.Key.Constraint;
        // A row keeps its constraint (and that constraint's host masks) alive after the schema cache let it
        // go: clients sending ever new schemas must not pin them all, so rows of few constraints are kept.
        var constraints = _rows.Keys.Select(key => key.Constraint).ToHashSet(ReferenceEqualityComparer.Instance);
        if (!constraints.Contains(constraint) && constraints.Count >= MaxConstraints)
        {
            var stale = _rows.GroupBy(pair => pair.Key.Constraint).OrderBy(group => group.Max(pair => pair.Value.LastUsed)).First().Key;
            Evict(step, key => ReferenceEquals(key.Constraint, stale), untilUnderBound: false);
        }
        row = new Row(Upload(rule.Mask, _width, _device!).DetachFromDisposeScope()) { LastUsed = _clock };
        _rows[rule.Key] = row;
        RowsUploaded++;
        return row.Distances;
    }

    /// <summary>Rows of at most this many constraints are kept (each keeps its constraint's host masks alive).</summary>
    public const int MaxConstraints = 8;

    /// <summary>
    /// Rows that <paramref name="may"/> go, least recently used first: all of them, or with
    /// <paramref name="untilUnderBound"/> until three quarters of the byte bound are left; never a row this step uses.
    /// </summary>
    private void Evict(IReadOnlyList<MaskRule> step, Func<(OutputConstraint Constraint, GrammarState State), bool> may, bool untilUnderBound)
    {
        var keep = step.Select(rule => rule.Key).ToHashSet();
        var target = cacheBytes * 3 / 4 / Math.Max(1, _width);
        foreach (var (key, row) in _rows.OrderBy(pair => pair.Value.LastUsed).ToArray())
        {
            if (untilUnderBound && _rows.Count <= target) break;
            if (keep.Contains(key) || !may(key)) continue;
            row.Distances.Dispose();
            _rows.Remove(key);
        }
    }

    /// <summary>
    /// One row on the device: each token's distance (saturated), refused ones 255; with
    /// <paramref name="exactWithin"/> (a budget past the saturation's reach), allowed tokens within it 0 and the rest refused.
    /// </summary>
    private Tensor Upload(TokenMask mask, int width, Device device, int? exactWithin = null)
    {
        if (_staging.Length != width) _staging = new byte[width];
        Array.Fill(_staging, RefusedToken);
        for (var i = 0; i < mask.Ids.Length; i++)
        {
            var id = mask.Ids[i];
            if (id >= width) continue;
            var distance = mask.Distances[i];
            _staging[id] = exactWithin is { } within ? (distance <= within ? (byte)0 : RefusedToken) : (byte)Math.Min(distance, Saturated);
        }
        return tensor(_staging, device: device);
    }

    private void Clear()
    {
        foreach (var row in _rows.Values) row.Distances.Dispose();
        _rows.Clear();
    }

    public void Dispose() => Clear();

    private sealed class Row(Tensor distances)
    {
        public Tensor Distances { get; } = distances;

        public long LastUsed { get; set; }
    }
}
