using static TorchSharp.torch;

namespace DeepSeek.Model.Native;

/// <summary>
/// The collectives an expert-parallel group's ranks run together (NCCL's, through
/// <see cref="NcclProcessGroup"/>). Every rank must issue the same collectives in the same order.
/// A <c>wait</c> of zero makes the current stream wait and not the host; a positive one
/// also blocks the host until the collective completes, and one that does not complete in time (a rank
/// lost or stuck) throws. After any failure the group is aborted: every later call throws, and the
/// ranks form a new group.
/// </summary>
public interface IProcessGroup : IDisposable
{
    int Rank { get; }

    int WorldSize { get; }

    /// <summary>Rank 0's number for this formation of the group; every member sees the same one.</summary>
    long Generation { get; }

    /// <summary>Rank <paramref name="root"/>'s <paramref name="tensor"/> into every other rank's (same shape and dtype).</summary>
    void Broadcast(Tensor tensor, int root, TimeSpan wait);

    /// <summary>
    /// Chunk <c>j</c> of <paramref name="input"/> (dim 0) to rank <c>j</c>, rank <c>i</c>'s chunk into chunk
    /// <c>i</c> of <paramref name="output"/>: equal chunks without split sizes, else one row count per rank each.
    /// </summary>
    void AllToAll(Tensor output, Tensor input, IReadOnlyList<long>? outputSplits, IReadOnlyList<long>? inputSplits, TimeSpan wait);

    /// <summary>Every rank's <paramref name="input"/> into <paramref name="output"/> (<c>WorldSize</c> × its rows), in rank order.</summary>
    void AllGather(Tensor output, Tensor input, TimeSpan wait);

    /// <summary>Ends collectives in flight instead of waiting for a rank that is gone; the group then fails every call.</summary>
    void Abort();
}
