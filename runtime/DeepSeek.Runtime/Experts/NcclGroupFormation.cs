using DeepSeek.Model.Devices;
using DeepSeek.Model.Native;
using DeepSeek.Model.Parallelism;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// The NCCL group's lifecycle on a member whose engine exchanges over it: the leader of the leader shape
/// (its <see cref="NcclExpertTransport"/>; the other ranks follow in <see cref="NcclGroupRank"/>), or every
/// data-parallel rank (its <see cref="LockstepExpertTransport"/>). Forms a group when
/// <see cref="NcclFormation.ShouldForm"/> says so (rank 0 serves the store and names each generation; every
/// member agrees on the model before it is used, <see cref="NcclGroupJoin"/>) and attaches it to the
/// transport. While a group is attached, each tick tends it: the leader keeps its idle ranks' waits alive
/// with heartbeats; a data-parallel rank whose control plane lost a peer aborts the group's collectives at
/// once rather than at their deadline. On stop the leader tells its ranks it leaves (a data-parallel rank's
/// engine leaves in its last agreement). A thread of its own: forming blocks in NCCL for up to the join
/// timeout; its only tensors are the small agreement and header rows.
/// </summary>
public sealed partial class NcclGroupFormation(ExpertGroup group, string deviceName, ExpertPeers peers, IGroupBoundTransport transport,
    Serving.Readiness readiness, IHostApplicationLifetime lifetime, TimeProvider time, ILogger<NcclGroupFormation> logger) : BackgroundService
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);

    /// <summary>Raised when the group is attached or detached.</summary>
    public event Action? Changed;

    /// <summary>The peers' readiness (gRPC) combined with the NCCL group's.</summary>
    public GroupReadiness Readiness(GroupReadiness ranks) => NcclFormation.Readiness(ranks, transport.Group?.Generation, transport.DetachedBecause);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.Factory.StartNew(() => Run(stoppingToken), stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private void Run(CancellationToken stoppingToken)
    {
        transport.Detached += OnDetached;
        NativeHelper? helper = null;
        var generation = 0L;
        var failures = 0;
        var lastAttempt = time.GetTimestamp();
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var peersNow = peers.Readiness;
                Tend(peersNow);
                // Not gated on the engine: its warm-up already needs the group (its first exchange waits for it).
                if (readiness.State != Serving.ReadinessState.Failed
                    && NcclFormation.ShouldForm(peersNow.Ready, transport.Group is not null, failures, time.GetElapsedTime(lastAttempt)))
                {
                    lastAttempt = time.GetTimestamp();
                    helper ??= LoadHelper();
                    if (helper is null) return;
                    if (Form(helper, ++generation)) failures = 0;
                    else failures++;
                }
                stoppingToken.WaitHandle.WaitOne(Tick);
            }
        }
        finally
        {
            transport.Detached -= OnDetached;
            (transport as NcclExpertTransport)?.Stop();
        }
    }

    /// <summary>Each tick, what the transport's shape needs of an attached group.</summary>
    private void Tend(GroupReadiness peersNow)
    {
        switch (transport)
        {
            case NcclExpertTransport leader:
                // During a placement change the ranks stage and switch between headers: one every tick then.
                leader.Heartbeat(group.PlacementChanging ? TimeSpan.Zero : NcclFormation.HeartbeatInterval);
                break;
            case LockstepExpertTransport lockstep when !peersNow.Ready && lockstep.Group is not null:
                lockstep.Abort($"the group lost a peer: {peersNow.Message}");
                break;
        }
    }

    private NativeHelper? LoadHelper()
    {
        var helper = NativeHelper.TryLoad(out var reason);
        if (helper is not null) return helper;
        // serve checked the file before starting; a helper that is there but does not load is as fatal.
        LogHelperMissing(logger, reason);
        readiness.MarkFailed();
        Environment.ExitCode = 1;
        lifetime.StopApplication();
        return null;
    }

    /// <param name="helper">The native helper, loaded.</param>
    /// <param name="generation">This member's count of attempts; only rank 0's names the group (the others learn it from the store).</param>
    private bool Form(NativeHelper helper, long generation)
    {
        var settings = group.Settings;
        var device = TorchRuntime.Resolve(deviceName);
        var store = NcclFormation.StoreEndpoint(settings);
        LogForming(logger, settings.Rank, settings.WorldSize, store.Port);
        if (NcclGroupJoin.TryJoin(helper, group, device, settings.Rank == 0 ? generation : null, out var problem) is not { } formed)
        {
            // A store that did not come up, a rank that did not join in time or disagrees: try again after a backoff.
            LogFormationFailed(logger, settings.Rank, problem);
            transport.Detach(problem);
            Changed?.Invoke();
            return false;
        }
        transport.Attach(formed, device);
        LogFormed(logger, settings.Rank, formed.Generation, settings.WorldSize);
        Changed?.Invoke();
        return true;
    }

    private void OnDetached(string reason)
    {
        LogDetached(logger, reason);
        Changed?.Invoke();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Rank {Rank} forming an NCCL group of {WorldSize} ranks (store on port {Port})")]
    private static partial void LogForming(ILogger logger, int rank, int worldSize, int port);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rank {Rank}: NCCL group generation {Generation} of {WorldSize} ranks formed")]
    private static partial void LogFormed(ILogger logger, int rank, long generation, int worldSize);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rank {Rank}: the NCCL group did not form: {Problem}")]
    private static partial void LogFormationFailed(ILogger logger, int rank, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "NCCL group detached: {Reason}")]
    private static partial void LogDetached(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The nccl expert transport cannot run: {Reason}")]
    private static partial void LogHelperMissing(ILogger logger, string reason);
}
