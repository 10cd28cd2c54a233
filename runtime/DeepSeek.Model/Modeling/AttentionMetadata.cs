using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// What every layer's attention needs about a batch, built once per forward: the rotary cos/sin of
/// each token, where to write its latent, and a padded <c>[sequences, max queries, max context]</c>
/// view for batched attention (gather indices, causal mask, and the way back to batch order).
/// </summary>
public sealed class AttentionMetadata : IDisposable
{
    public required Tensor Cos { get; init; }
    public required Tensor Sin { get; init; }
    public required Tensor SlotMapping { get; init; }
    /// <summary><c>[S·Qmax]</c>: batch row of each padded query (pads repeat a valid row).</summary>
    public required Tensor QueryRows { get; init; }
    /// <summary><c>[S·Cmax]</c>: cache slot of each padded context entry.</summary>
    public required Tensor ContextSlots { get; init; }
    /// <summary><c>[S, Qmax, 1, Cmax]</c>: true where a query must not see a context entry.</summary>
    public required Tensor Masked { get; init; }
    /// <summary><c>[T]</c>: padded row of each batch token.</summary>
    public required Tensor UnpadRows { get; init; }
    public required int SequenceCount { get; init; }
    public required int MaxQueries { get; init; }
    public required int MaxContext { get; init; }

    internal static AttentionMetadata Build(ForwardBatch batch, Layers.RotaryEmbedding rotary, ScalarType dtype, Device device)
    {
        var sequences = batch.Sequences;
        var s = sequences.Count;
        var maxQueries = sequences.Max(q => q.Length);
        var maxContext = sequences.Max(q => q.ContextSlots.Length);
        var queryRows = new long[s * maxQueries];
        var contextSlots = new long[s * maxContext];
        var masked = new bool[s * maxQueries * maxContext];
        var unpad = new long[batch.TokenCount];
        Array.Fill(masked, true);
        for (var i = 0; i < s; i++)
        {
            var span = sequences[i];
            for (var j = 0; j < maxContext; j++)
                contextSlots[i * maxContext + j] = j < span.ContextSlots.Length ? span.ContextSlots[j] : span.ContextSlots[0];
            for (var q = 0; q < maxQueries; q++)
            {
                var row = i * maxQueries + q;
                if (q < span.Length)
                {
                    var t = span.Start + q;
                    queryRows[row] = t;
                    unpad[t] = row;
                    var visible = (int)Math.Min(batch.Positions[t] + 1, span.ContextSlots.Length);
                    Array.Fill(masked, false, row * maxContext, visible);
                }
                else
                {
                    // Padding rows see one entry so their softmax stays finite; they are dropped afterwards.
                    queryRows[row] = span.Start;
                    masked[row * maxContext] = false;
                }
            }
        }

        using var positions = tensor(batch.Positions, device: device);
        var (cos, sin) = rotary.CosSin(positions, dtype);
        return new AttentionMetadata
        {
            Cos = cos,
            Sin = sin,
            SlotMapping = tensor(batch.SlotMapping, device: device),
            QueryRows = tensor(queryRows, device: device),
            ContextSlots = tensor(contextSlots, device: device),
            Masked = tensor(masked, device: device).view(s, maxQueries, 1, maxContext),
            UnpadRows = tensor(unpad, device: device),
            SequenceCount = s,
            MaxQueries = maxQueries,
            MaxContext = maxContext,
        };
    }

    public void Dispose()
    {
        Cos.Dispose();
        Sin.Dispose();
        SlotMapping.Dispose();
        QueryRows.Dispose();
        ContextSlots.Dispose();
        Masked.Dispose();
        UnpadRows.Dispose();
    }
}
