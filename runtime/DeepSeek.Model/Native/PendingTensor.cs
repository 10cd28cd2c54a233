using static TorchSharp.torch;

namespace DeepSeek.Model.Native;

/// <summary>
/// A tensor still being written on a side stream (<see cref="NativeHelper.Fp8DequantizeAhead"/>): reading
/// it before <see cref="Take"/> reads unfinished values. Taking it queues the current stream's wait for
/// the side stream (on the device; the host does not block). It owns the tensor, outside any dispose
/// scope: disposing joins the side stream first if it was never taken, then frees the tensor, so its
/// memory goes back to the current stream's pool only after the side stream's writes, in that stream's
/// order. Engine thread only.
/// </summary>
public sealed class PendingTensor : IDisposable
{
    private readonly NativeHelper _helper;
    private readonly Tensor _tensor;
    private IntPtr _ready;

    internal PendingTensor(Tensor tensor, NativeHelper helper, IntPtr ready)
    {
        _tensor = tensor.DetachFromDisposeScope();
        _helper = helper;
        _ready = ready;
    }

    /// <summary>The tensor, once the current stream has been told to wait for it; a second take returns it again.</summary>
    public Tensor Take()
    {
        if (_ready != IntPtr.Zero)
        {
            var ready = _ready;
            _ready = IntPtr.Zero;
            _helper.StreamWait(ready);
        }
        return _tensor;
    }

    public void Dispose()
    {
        try
        {
            Take();
        }
        finally
        {
            _tensor.Dispose();
        }
    }
}
