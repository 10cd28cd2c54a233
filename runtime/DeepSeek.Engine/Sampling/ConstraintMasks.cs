using DeepSeek.Engine.Structured;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Engine.Sampling;

/// <summary>
/// Constrained rows' token masks built where the logits are: each grammar state's mask is uploaded once
/// as a row of distances (bytes a token would leave to finish the document; <see cref="int.MaxValue"/>
/// for a token the state refuses), and a step's mask is those rows compared with each row's budget.
/// The host then does per row a lookup and two binary searches instead of writing a vocabulary-wide
/// mask and copying it: at 16 constrained rows of a 102,400-token vocabulary that was 2.3 ms a step.
/// Owned by the engine thread; the rows are bounded in bytes like the host's per-state cache.
/// </summary>
internal sealed class ConstraintMasks(long cacheBytes = ConstraintMasks.DefaultCacheBytes) : IDisposable
{
    /// <summary>Device bytes of cached rows (4 bytes a token of the vocabulary, per grammar state).</summary>
    public const long DefaultCacheBytes = 64L << 20;

    private readonly Dictionary<TokenMask, Tensor> _rows = new(ReferenceEqualityComparer.Instance);
    private int _width = -1;

    /// <summary>Rows uploaded since start (cache misses): for tests.</summary>
    public long RowsUploaded { get; private set; }

    /// <summary>Rows held now.</summary>
    public int RowsHeld => _rows.Count;

    /// <summary>
    /// <c>[rules, width]</c> booleans on <paramref name="device"/>, true where a row's token is refused:
    /// exactly the complement of <see cref="ConstraintCursor.Allowed"/> for the same rules.
    /// </summary>
    public Tensor Refused(IReadOnlyList<MaskRule> rules, IReadOnlyList<IReadOnlyList<int>> endIds, int width, Device device)
    {
        if (width != _width || (_rows.Count > 0 && _rows.Values.First().device != device)) Clear();
        _width = width;
        var distances = stack([.. rules.Select(rule => RowOf(rule.Mask, rules, width, device))]);
        using var budgets = tensor(rules.Select(rule => rule.MaxDistance).ToArray(), device: device).unsqueeze(1);
        var allowed = distances.le(budgets);
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
            allowed.view(-1).index_fill_(0, index, true);
        }
        return allowed.logical_not_();
    }

    private Tensor RowOf(TokenMask mask, IReadOnlyList<MaskRule> step, int width, Device device)
    {
        if (_rows.TryGetValue(mask, out var row)) return row;
        var rowBytes = 4L * width;
        if ((_rows.Count + 1) * rowBytes > cacheBytes)
        {
            // Full: drop every row this step does not use (it may need more than the bound; it gets them).
            var used = step.Select(rule => rule.Mask).ToHashSet(ReferenceEqualityComparer.Instance);
            foreach (var stale in _rows.Keys.Where(key => !used.Contains(key)).ToArray())
            {
                _rows[stale].Dispose();
                _rows.Remove(stale);
            }
        }
        var host = new int[width];
        Array.Fill(host, int.MaxValue);
        for (var i = 0; i < mask.Ids.Length; i++)
            if (mask.Ids[i] < width) host[mask.Ids[i]] = mask.Distances[i];
        row = tensor(host, device: device).DetachFromDisposeScope();
        _rows[mask] = row;
        RowsUploaded++;
        return row;
    }

    private void Clear()
    {
        foreach (var row in _rows.Values) row.Dispose();
        _rows.Clear();
    }

    public void Dispose() => Clear();
}
