using DeepSeek.Model.Native;
using static TorchSharp.torch;

namespace DeepSeek.Model.Parallelism;

/// <summary>
/// A transport over one formed process group at a time (NCCL's): whoever forms the groups attaches each,
/// and the transport detaches it itself when a collective fails, saying why. The leader shape's
/// <see cref="NcclExpertTransport"/> and data-parallel attention's <see cref="LockstepExpertTransport"/>.
/// </summary>
public interface IGroupBoundTransport
{
    /// <summary>The group in use, or null while none is formed.</summary>
    IProcessGroup? Group { get; }

    /// <summary>Why no group is attached (the last failure), for readiness messages.</summary>
    string DetachedBecause { get; }

    /// <summary>Raised on the failing thread when a failure detaches the group; the argument says why.</summary>
    event Action<string>? Detached;

    /// <summary>Starts using <paramref name="group"/>, formed and agreed, on <paramref name="device"/>.</summary>
    void Attach(IProcessGroup group, Device device);

    /// <summary>Records why no group is attached (a formation that failed), for readiness messages.</summary>
    void Detach(string reason);
}
