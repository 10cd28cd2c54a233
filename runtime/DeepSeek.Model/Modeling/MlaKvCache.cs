using DeepSeek.Model.Configuration;
using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// MLA's KV cache: per layer one preallocated <c>[slots, kv_lora_rank + qk_rope_head_dim]</c> tensor
/// holding each token's normalised compressed latent and its roped key part, not per-head K and V
/// (for V2-Lite 576 values per token per layer instead of 2 · 16 · 192). Who owns which slot is the
/// caller's business (contiguous for the simple generator, paged blocks for the engine).
/// </summary>
public sealed class MlaKvCache : IDisposable
{
    private readonly Tensor[] _layers;

    public long SlotCount { get; }

    public int LatentDimension { get; }

    /// <summary>Values one layer caches per token: the latent (<c>kv_lora_rank</c>) and the shared roped key part (<c>qk_rope_head_dim</c>).</summary>
    public static int LatentDimensionOf(DeepSeekConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.KvLoraRank + config.QkRopeHeadDim;
    }

    /// <summary>Values the cache holds per token over every layer: what KV sizing multiplies by the dtype's bytes.</summary>
    public static long ValuesPerToken(DeepSeekConfig config) => (long)config.NumHiddenLayers * LatentDimensionOf(config);

    public MlaKvCache(int layerCount, long slotCount, int latentDimension, ScalarType dtype, Device device)
    {
        if (slotCount <= 0) throw new ArgumentOutOfRangeException(nameof(slotCount), "A KV cache needs at least one slot.");
        SlotCount = slotCount;
        LatentDimension = latentDimension;
        _layers = new Tensor[layerCount];
        for (var layer = 0; layer < layerCount; layer++)
        {
            var buffer = zeros([slotCount, latentDimension], dtype, device);
            // The cache outlives every dispose scope of the forwards that write it.
            buffer.DetachFromDisposeScope();
            _layers[layer] = buffer;
        }
    }

    public Tensor Layer(int index) => _layers[index];

    public int LayerCount => _layers.Length;

    public void Dispose()
    {
        foreach (var layer in _layers) layer.Dispose();
    }
}
