namespace DeepSeek.Model.Planning;

/// <summary>
/// The GPU memory a rank keeps out of the KV cache: a fixed device overhead plus the share of the
/// memory after the weights that serve leaves for activations and workspaces.
/// <code>reserve = overhead + (1 − kv_fraction) × max(0, gpu − overhead − weights)</code>
/// serve sizes its KV pool as <c>kv_fraction</c> (<c>--kv-cache-memory-fraction</c>) of the memory it
/// finds free once the weights are loaded, and the CUDA context is already gone by then; so the
/// plan's KV cache, <c>gpu − weights − reserve</c>, is what serve would allocate on that GPU.
/// </summary>
public static class MemoryReserve
{
    /// <summary>
    /// The CUDA context, cuBLAS workspaces and NCCL buffers of a rank, which the device loses before
    /// serve measures what is free: about a gibibyte for the context and libraries on H100/H200, the
    /// rest NCCL's channel buffers. A planning figure, not a measurement.
    /// </summary>
    public const long DeviceOverheadBytes = 2L << 30;

    public static long Bytes(long gpuMemoryBytes, long weightBytes, double kvCacheMemoryFraction)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(gpuMemoryBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(weightBytes);
        if (!(kvCacheMemoryFraction > 0 && kvCacheMemoryFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(kvCacheMemoryFraction), kvCacheMemoryFraction, "The KV cache fraction must be in (0, 1].");
        var free = Math.Max(0, gpuMemoryBytes - DeviceOverheadBytes - weightBytes);
        return DeviceOverheadBytes + (long)Math.Ceiling(free * (1 - kvCacheMemoryFraction));
    }
}
