using DeepSeek.Model.Devices;
using DeepSeek.Model.Native;
using DeepSeek.Model.Parallelism;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// The leader's side of the NCCL group's lifecycle: forms a group when <see cref="NcclFormation.ShouldForm"/>
/// says so (store on this host, a new generation each time; the ranks agree on the model before it is
/// used), hands it to the engine's <see cref="NcclExpertTransport"/>, keeps idle ranks' waits alive with
/// heartbeats, and tells the ranks it leaves when the host stops. Formation and heartbeats run on a thread
/// of their own (they block in NCCL); their only tensors are the small int64 headers, and the transport
/// serialises them with the engine thread's exchanges.
/// </summary>
public sealed partial class NcclGroupLeader(ExpertGroup group, string deviceName, ExpertPeers peers, NcclExpertTransport transport,
    Serving.Readiness readiness, IHostApplicationLifetime lifetime, TimeProvider time, ILogger<NcclGroupLeader> logger) : BackgroundService, INcclGroupFormation
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);

    /// <summary>Raised when the group is attached or detached.</summary>
    public event Action? Changed;

    /// <summary>The ranks' readiness combined with the NCCL group's.</summary>
    public GroupReadiness Readiness(GroupReadiness ranks) => NcclFormation.Readiness(ranks, transport.Group?.Generation, transport.DetachedBecause);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        // A thread of its own: creating a group and its first collective block for up to the join timeout.
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
                transport.Heartbeat(NcclFormation.HeartbeatInterval);
                // Not gated on the engine: its warm-up step already needs the group (the transport's first
                // exchange waits for it).
                if (readiness.State != Serving.ReadinessState.Failed
                    && NcclFormation.ShouldForm(peers.Readiness.Ready, transport.Group is not null, failures, time.GetElapsedTime(lastAttempt)))
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
            transport.Stop();
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

    private bool Form(NativeHelper helper, long generation)
    {
        var settings = group.Settings;
        var device = TorchRuntime.Resolve(deviceName);
        var store = NcclFormation.StoreEndpoint(settings);
        LogForming(logger, generation, settings.WorldSize, store.Port);
        if (NcclGroupJoin.TryJoin(helper, group, device, generation, out var problem) is not { } formed)
        {
            // A store that did not come up, a rank that did not join in time or disagrees: try again after a backoff.
            LogFormationFailed(logger, generation, problem);
            transport.Detach(problem);
            Changed?.Invoke();
            return false;
        }
        transport.Attach(formed, device);
        LogFormed(logger, generation, settings.WorldSize);
        Changed?.Invoke();
        return true;
    }

    private void OnDetached(string reason)
    {
        LogDetached(logger, reason);
        Changed?.Invoke();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Forming NCCL group generation {Generation} of {WorldSize} ranks (store on port {Port})")]
    private static partial void LogForming(ILogger logger, long generation, int worldSize, int port);

    [LoggerMessage(Level = LogLevel.Information, Message = "NCCL group generation {Generation} of {WorldSize} ranks formed")]
    private static partial void LogFormed(ILogger logger, long generation, int worldSize);

    [LoggerMessage(Level = LogLevel.Warning, Message = "NCCL group generation {Generation} did not form: {Problem}")]
    private static partial void LogFormationFailed(ILogger logger, long generation, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "NCCL group detached: {Reason}")]
    private static partial void LogDetached(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The nccl expert transport cannot run: {Reason}")]
    private static partial void LogHelperMissing(ILogger logger, string reason);
}
