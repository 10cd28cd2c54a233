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

    private readonly Dictionary<(OutputConstraint, GrammarState), Row> _rows = [];
    private int _width = -1;
    private Device? _device;
    private byte[] _staging = [];
    private long _clock;

    /// <summary>Rows uploaded since start (cache misses): for tests and benchmarks.</summary>
    public long RowsUploaded { get; private set; }

    /// <summary>Rows held now.</summary>
    public int RowsHeld => _rows.Count;

    /// <summary>
    /// <c>[rules, width]</c> booleans on <paramref name="device"/>, true where a row's token is refused:
    /// exactly the complement of <see cref="ConstraintCursor.Allowed"/> for the same rules.
    /// </summary>
    public Tensor Refused(IReadOnlyList<MaskRule> rules, IReadOnlyList<IReadOnlyList<int>> endIds, int width, Device device)
    {
        if (width != _width || _device is null || _device.type != device.type || _device.index != device.index) Clear();
        (_width, _device) = (width, device);
        _clock++;
        var distances = new Tensor[rules.Count];
        var budgets = new int[rules.Count];
        for (var r = 0; r < rules.Count; r++)
        {
            var rule = rules[r];
            var maxDistance = rule.MaxDistance;
            if (maxDistance < 0) (distances[r], budgets[r]) = (RowOf(rule, rules), -1);
            else if (maxDistance >= rule.Mask.MaxDistance) (distances[r], budgets[r]) = (RowOf(rule, rules), Saturated);
            else if (maxDistance < Saturated) (distances[r], budgets[r]) = (RowOf(rule, rules), maxDistance);
            // A budget that binds beyond the saturation (a document still hundreds of bytes from its end
            // with a budget just short of them): this step's row is written exactly, not cached.
            else (distances[r], budgets[r]) = (Upload(rule.Mask, width, device, maxDistance), 0);
        }
        using var budget = tensor(budgets, device: device).unsqueeze(1);
        var allowed = stack(distances).le(budget);
        var ends = new List<long>();
        for (var r = 0; r < rules.Count; r++)
        {
            if (!rules[r].EndAllowed) continue;
            foreach (var id in endIds[r])
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
        if (_rows.TryGetValue(rule.State, out var row))
        {
            row.LastUsed = _clock;
            return row.Distances;
        }
        if ((_rows.Count + 1L) * _width > cacheBytes) Evict(step);
        row = new Row(Upload(rule.Mask, _width, _device!, within: int.MaxValue).DetachFromDisposeScope()) { LastUsed = _clock };
        _rows[rule.State] = row;
        RowsUploaded++;
        return row.Distances;
    }

    /// <summary>The least recently used rows out, down to three quarters of the bound; never a row this step uses.</summary>
    private void Evict(IReadOnlyList<MaskRule> step)
    {
        var keep = step.Select(rule => rule.State).ToHashSet();
        var target = cacheBytes * 3 / 4 / Math.Max(1, _width);
        foreach (var (key, row) in _rows.OrderBy(pair => pair.Value.LastUsed).ToArray())
        {
            if (_rows.Count <= target) break;
            if (keep.Contains(key)) continue;
            row.Distances.Dispose();
            _rows.Remove(key);
        }
    }

    /// <summary>
    /// One row on the device: each token's distance (saturated), refused ones 255; with
    /// <paramref name="within"/> below the saturation's reach, allowed tokens within it 0 and the rest refused.
    /// </summary>
    private Tensor Upload(TokenMask mask, int width, Device device, int within)
    {
        if (_staging.Length != width) _staging = new byte[width];
        Array.Fill(_staging, RefusedToken);
        var exact = within != int.MaxValue;
        for (var i = 0; i < mask.Ids.Length; i++)
        {
            var id = mask.Ids[i];
            if (id >= width) continue;
            var distance = mask.Distances[i];
            if (exact) _staging[id] = distance <= within ? (byte)0 : RefusedToken;
            else _staging[id] = (byte)Math.Min(distance, Saturated);
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
