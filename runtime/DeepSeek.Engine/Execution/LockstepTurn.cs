namespace DeepSeek.Engine.Execution;

/// <summary>
/// What one idle turn of the engine did (<see cref="IModelRunner.IdleTurn"/>). A rank of a lockstep group
/// (data-parallel attention over NCCL) runs its forwards together with its peers, so while it has nothing
/// of its own it keeps taking turns: its peers' forwards need it in every exchange.
/// </summary>
internal enum LockstepTurn
{
    /// <summary>Not a rank of a lockstep group: the engine waits for work as long as it takes.</summary>
    Solo,
    /// <summary>Every rank is idle: wait briefly for work, then take the next turn.</summary>
    AllIdle,
    /// <summary>A peer ran a forward and this rank answered its exchanges: take the next turn at once.</summary>
    JoinedPeers,
    /// <summary>The group is not formed (or failed): nothing to join until it re-forms.</summary>
    GroupUnavailable,
}
