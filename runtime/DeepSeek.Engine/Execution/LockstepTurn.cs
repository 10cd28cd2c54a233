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

/// <summary>How long an engine waits for its own work between idle turns (<see cref="LockstepTurn"/>).</summary>
internal static class LockstepIdle
{
    /// <summary>Idle turns in a row after which the group counts as quiet.</summary>
    public const int QuietAfter = 1000;

    /// <summary>
    /// 1 ms while the group was busy lately (a peer's first forward waits at most that for this rank's turn);
    /// 20 ms once every rank was idle for <see cref="QuietAfter"/> turns in a row (about a second), so a quiet
    /// group agrees fifty times a second rather than a thousand; 100 ms while there is no group to agree in.
    /// No wait after a turn that joined a peer's forward: the next one is likely right behind it.
    /// </summary>
    public static TimeSpan Wait(LockstepTurn turn, int idleTurnsInARow) => turn switch
    {
        LockstepTurn.AllIdle => TimeSpan.FromMilliseconds(idleTurnsInARow < QuietAfter ? 1 : 20),
        LockstepTurn.GroupUnavailable => TimeSpan.FromMilliseconds(100),
        _ => TimeSpan.Zero,
    };
}
