using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Checkpoints;

/// <summary>
/// Host buffers a load copies weights through on their way to another dtype or device: one per stored
/// dtype, reused for every tensor, page-locked when the target is a GPU (a copy from pageable memory
/// goes through the driver's own staging at a fraction of the bus speed). Allocating per tensor would
/// fault in fresh host pages for every weight and hold a device-sized temporary for each. Engine
/// thread only, like every tensor.
/// </summary>
public sealed class HostStaging(Device target, long bytes = HostStaging.DefaultBytes) : IDisposable
{
    /// <summary>Large enough that a copy's fixed cost vanishes, small enough to page-lock without thought.</summary>
    public const long DefaultBytes = 64L << 20;

    private readonly Dictionary<ScalarType, Tensor> _buffers = [];

    /// <summary>A 1-D buffer of <paramref name="dtype"/> to copy to the target device from.</summary>
    public Tensor For(ScalarType dtype)
    {
        if (_buffers.TryGetValue(dtype, out var buffer)) return buffer;
        var elements = Math.Max(1, bytes / ElementSize(dtype));
        buffer = empty(elements, dtype, CPU);
        if (target.type == DeviceType.CUDA)
        {
            var pageable = buffer;
            buffer = pageable.pin_memory();
            pageable.Dispose();
        }
        // It outlives the dispose scope of the tensor it was first needed for.
        buffer.DetachFromDisposeScope();
        _buffers[dtype] = buffer;
        return buffer;
    }

    public void Dispose()
    {
        foreach (var buffer in _buffers.Values) buffer.Dispose();
        _buffers.Clear();
    }

    private static long ElementSize(ScalarType dtype)
    {
        using var probe = empty(0, dtype, CPU);
        return probe.element_size();
    }
}
