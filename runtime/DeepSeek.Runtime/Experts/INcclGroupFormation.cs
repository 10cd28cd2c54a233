namespace DeepSeek.Runtime.Experts;

/// <summary>
/// A member's NCCL group as its readiness sees it: the leader's <see cref="NcclGroupLeader"/>, or a
/// data-parallel rank's <see cref="LockstepGroupFormation"/>. Not ready while the group is not formed.
/// </summary>
public interface INcclGroupFormation
{
    /// <summary>Raised when the group is attached or detached.</summary>
    event Action? Changed;

    /// <summary>The peers' readiness (gRPC) combined with the NCCL group's.</summary>
    GroupReadiness Readiness(GroupReadiness ranks);
}
