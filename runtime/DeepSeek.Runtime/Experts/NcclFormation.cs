using System.Net;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// The NCCL transport's lifecycle as pure decisions (the services that act on them are
/// <see cref="NcclGroupFormation"/> and <see cref="NcclGroupRank"/>). The gRPC control plane stays as it is:
/// the leader polls every rank's Status, and forms an NCCL group only while every rank answers ready;
/// a failed collective detaches the group, and it is formed anew (a new generation, a new store).
/// </summary>
public static class NcclFormation
{
    /// <summary>How often an idle leader tells its ranks it is alive.</summary>
    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(2);

    /// <summary>A rank that hears nothing from its leader for this long counts it as lost and rejoins.</summary>
    public static readonly TimeSpan IdleDeadline = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Joining a group (store rendezvous, agreement) waits at most this long; it is also the group's own
    /// collective timeout (NCCL's watchdog), so it exceeds every bounded wait of an exchange.
    /// </summary>
    public static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Where the group's c10d TCPStore listens: on the leader (rank 0's host in <c>--peers</c>), one port
    /// above rank 0's expert port.
    /// </summary>
    public static DnsEndPoint StoreEndpoint(ExpertParallelSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var leader = settings.Peers.Count > 0 ? settings.Peers[0] : throw new ArgumentException("A group needs --peers.", nameof(settings));
        return new DnsEndPoint(leader.Host, leader.Port + 1);
    }

    /// <summary>
    /// The leader forms a group when every rank is ready over gRPC (loaded, same checkpoint), none is
    /// attached, and the backoff after <paramref name="failures"/> failed attempts has passed.
    /// </summary>
    public static bool ShouldForm(bool ranksReady, bool attached, int failures, TimeSpan sinceLastAttempt) =>
        ranksReady && !attached && (failures == 0 || sinceLastAttempt >= Backoff.Delay(failures));

    /// <summary>The leader's readiness: the ranks' (gRPC) first, then whether the NCCL group is formed.</summary>
    public static GroupReadiness Readiness(GroupReadiness ranks, long? generation, string detachedBecause)
    {
        ArgumentNullException.ThrowIfNull(ranks);
        if (!ranks.Ready) return ranks;
        return generation is { } g
            ? ranks with { Message = $"{ranks.Message}; NCCL group generation {g} formed" }
            : new GroupReadiness(false, [], $"expert-parallel NCCL group not formed: {detachedBecause}");
    }

    /// <summary>How long a rank waits before joining again after its loop ended.</summary>
    public static TimeSpan RejoinDelay(bool failed, int failuresInARow) => failed ? Backoff.Delay(failuresInARow) : TimeSpan.FromMilliseconds(200);
}
