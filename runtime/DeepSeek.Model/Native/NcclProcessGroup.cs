using static TorchSharp.torch;

namespace DeepSeek.Model.Native;

/// <summary>
/// An NCCL process group (c10d <c>ProcessGroupNCCL</c>) of the ranks of one expert-parallel replica, from
/// <see cref="NativeHelper.CreateProcessGroup"/>. Collectives run on device tensors; the current CUDA
/// stream waits for them, the host does not.
/// </summary>
public sealed class NcclProcessGroup : IDisposable
{
    private readonly NativeHelper _helper;
    private IntPtr _handle;

    internal NcclProcessGroup(NativeHelper helper, IntPtr handle, int rank, int worldSize)
    {
        _helper = helper;
        _handle = handle;
        Rank = rank;
        WorldSize = worldSize;
    }

    public int Rank { get; }

    public int WorldSize { get; }

    /// <summary>
    /// Sends chunk <c>j</c> of <paramref name="input"/> (dim 0) to rank <c>j</c> and receives rank
    /// <c>i</c>'s chunk into chunk <c>i</c> of <paramref name="output"/>. Without split sizes the chunks are
    /// equal; with them, one row count per rank each (tokens routed to each rank's experts).
    /// </summary>
    public void AllToAll(Tensor output, Tensor input, IReadOnlyList<long>? outputSplits = null, IReadOnlyList<long>? inputSplits = null)
    {
        ObjectDisposedException.ThrowIf(_handle == IntPtr.Zero, this);
        if ((outputSplits is null) != (inputSplits is null))
            throw new ArgumentException("Give both split lists or neither.");
        if (outputSplits is not null && (outputSplits.Count != WorldSize || inputSplits!.Count != WorldSize))
            throw new ArgumentException($"Split lists need one row count per rank ({WorldSize}).");
        _helper.AllToAll(_handle, output, input, outputSplits?.ToArray(), inputSplits?.ToArray());
    }

    /// <summary>Every rank's <paramref name="input"/> into <paramref name="output"/> (<c>WorldSize</c> × its rows), in rank order.</summary>
    public void AllGather(Tensor output, Tensor input)
    {
        ObjectDisposedException.ThrowIf(_handle == IntPtr.Zero, this);
        _helper.AllGather(_handle, output, input);
    }

    public void Dispose()
    {
        if (_handle == IntPtr.Zero) return;
        _helper.DestroyProcessGroup(_handle);
        _handle = IntPtr.Zero;
    }
}
