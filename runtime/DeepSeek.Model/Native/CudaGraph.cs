namespace DeepSeek.Model.Native;

/// <summary>
/// A captured CUDA graph (<see cref="NativeHelper.CaptureGraph"/>): <see cref="Replay"/> relaunches the
/// captured kernels on the current stream with one call. Inputs are fed by copying into the tensors the
/// capture read; outputs appear in the tensors it wrote.
/// </summary>
public sealed class CudaGraph : IDisposable
{
    private readonly NativeHelper _helper;
    private IntPtr _handle;

    internal CudaGraph(NativeHelper helper, IntPtr handle)
    {
        _helper = helper;
        _handle = handle;
    }

    public void Replay()
    {
        ObjectDisposedException.ThrowIf(_handle == IntPtr.Zero, this);
        _helper.ReplayGraph(_handle);
    }

    public void Dispose()
    {
        if (_handle == IntPtr.Zero) return;
        _helper.DestroyGraph(_handle);
        _handle = IntPtr.Zero;
    }
}

/// <summary>
/// One private memory pool shared by the graphs of several batch-size buckets, so they cost about the
/// largest one's memory. Safe because only one bucket's graph replays per step and the step's outputs
/// are read before the next replay. Dispose it after its graphs.
/// </summary>
public sealed class CudaGraphPool : IDisposable
{
    private readonly NativeHelper _helper;

    internal CudaGraphPool(NativeHelper helper, IntPtr handle)
    {
        _helper = helper;
        Handle = handle;
    }

    internal IntPtr Handle { get; private set; }

    public void Dispose()
    {
        if (Handle == IntPtr.Zero) return;
        _helper.DestroyGraphPool(Handle);
        Handle = IntPtr.Zero;
    }
}
