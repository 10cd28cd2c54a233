using static TorchSharp.torch;

namespace DeepSeek.Model.Native;

/// <summary>
/// An NCCL process group (c10d <c>ProcessGroupNCCL</c>) of the ranks of one expert-parallel replica, from
/// <see cref="NativeHelper.CreateProcessGroup"/>. Collectives run on device tensors of the group's device.
/// </summary>
public sealed class NcclProcessGroup : IProcessGroup
{
    private readonly NativeHelper _helper;
    private IntPtr _handle;

    internal NcclProcessGroup(NativeHelper helper, IntPtr handle, int rank, int worldSize, long generation)
    {
        _helper = helper;
        _handle = handle;
        Rank = rank;
        WorldSize = worldSize;
        Generation = generation;
    }

    public int Rank { get; }

    public int WorldSize { get; }

    public long Generation { get; }

    public void AllToAll(Tensor output, Tensor input, IReadOnlyList<long>? outputSplits = null, IReadOnlyList<long>? inputSplits = null, TimeSpan wait = default)
    {
        ObjectDisposedException.ThrowIf(_handle == IntPtr.Zero, this);
        if ((outputSplits is null) != (inputSplits is null))
            throw new ArgumentException("Give both split lists or neither.");
        if (outputSplits is not null && (outputSplits.Count != WorldSize || inputSplits!.Count != WorldSize))
            throw new ArgumentException($"Split lists need one row count per rank ({WorldSize}).");
        _helper.AllToAll(_handle, output, input, outputSplits?.ToArray(), inputSplits?.ToArray(), wait);
    }

    public void AllGather(Tensor output, Tensor input, TimeSpan wait = default)
    {
        ObjectDisposedException.ThrowIf(_handle == IntPtr.Zero, this);
        _helper.AllGather(_handle, output, input, wait);
    }

    public void Broadcast(Tensor tensor, int root, TimeSpan wait = default)
    {
        ObjectDisposedException.ThrowIf(_handle == IntPtr.Zero, this);
        ArgumentOutOfRangeException.ThrowIfNegative(root);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(root, WorldSize);
        _helper.Broadcast(_handle, tensor, root, wait);
    }

    public void Abort()
    {
        if (_handle != IntPtr.Zero) _helper.AbortProcessGroup(_handle);
    }

    public void Dispose()
    {
        if (_handle == IntPtr.Zero) return;
        _helper.DestroyProcessGroup(_handle);
        _handle = IntPtr.Zero;
    }
}
