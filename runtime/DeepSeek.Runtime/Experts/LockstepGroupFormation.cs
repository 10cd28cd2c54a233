using DeepSeek.Model.Devices;
using DeepSeek.Model.Native;
using DeepSeek.Model.Parallelism;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// A data-parallel rank's side of its NCCL group (<c>--data-parallel-attention</c> with
/// <c>--expert-transport nccl</c>): every rank forms the group together with its peers when all of them answer
/// <c>Status</c> ready over gRPC and none is attached (<see cref="NcclFormation.ShouldForm"/>; rank 0 serves the
/// store and names each generation), and hands it to the engine's <see cref="LockstepExpertTransport"/>. When
/// the control plane loses a peer while a group is attached, the group's collectives are aborted at once
/// rather than waited out; the group then forms anew when the peer returns. Formation runs on a thread of its
/// own (it blocks in NCCL for up to the join timeout); its only tensors are the agreement rows, and the engine
/// thread does not touch a group until it is attached.
/// </summary>
public sealed partial class LockstepGroupFormation(ExpertGroup group, string deviceName, ExpertPeers peers, LockstepExpertTransport transport,
    Serving.Readiness readiness, IHostApplicationLifetime lifetime, TimeProvider time, ILogger<LockstepGroupFormation> logger) : BackgroundService, INcclGroupFormation
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);

    public event Action? Changed;

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
                var ranks = peers.Readiness;
                if (!ranks.Ready && transport.Group is not null) transport.Abort($"the group lost a peer: {ranks.Message}");
                if (readiness.State != Serving.ReadinessState.Failed
                    && NcclFormation.ShouldForm(ranks.Ready, transport.Group is not null, failures, time.GetElapsedTime(lastAttempt)))
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
    /// <param name="generation">This rank's count of attempts; only rank 0's names the group (the others learn it from the store).</param>
    private bool Form(NativeHelper helper, long generation)
    {
        var settings = group.Settings;
        var device = TorchRuntime.Resolve(deviceName);
        if (NcclGroupJoin.TryJoin(helper, group, device, settings.Rank == 0 ? generation : null, out var problem) is not { } formed)
        {
            LogFormationFailed(logger, settings.Rank, problem);
            transport.Detach(problem);
            Changed?.Invoke();
            return false;
        }
        transport.Attach(formed);
        LogFormed(logger, settings.Rank, formed.Generation, settings.WorldSize);
        Changed?.Invoke();
        return true;
    }

    private void OnDetached(string reason)
    {
        LogDetached(logger, reason);
        Changed?.Invoke();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Rank {Rank} formed NCCL group generation {Generation} of {WorldSize} data-parallel ranks")]
    private static partial void LogFormed(ILogger logger, int rank, long generation, int worldSize);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rank {Rank}: the NCCL group did not form: {Problem}")]
    private static partial void LogFormationFailed(ILogger logger, int rank, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "NCCL group detached: {Reason}")]
    private static partial void LogDetached(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The nccl expert transport cannot run: {Reason}")]
    private static partial void LogHelperMissing(ILogger logger, string reason);
}
