using DeepSeek.Model.Modeling;
using DeepSeek.Model.Native;
using DeepSeek.Model.Parallelism;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// A non-leader rank's side of the NCCL group's lifecycle: once its shard is loaded, join the leader's
/// group (store on the leader, the generation the leader names), agree on the model, follow the
/// leader's exchanges on the rank's tensor thread (running its other queued work, a placement change,
/// between the leader's headers), and when the group ends (leader stopped, lost or a
/// collective failed) join the next one after a backoff. The Experts gRPC service keeps answering
/// Status meanwhile: it is how the leader knows this rank is loaded and reachable.
/// </summary>
public sealed partial class NcclGroupRank(ExpertGroup group, RankExperts experts, Serving.Readiness readiness,
    IHostApplicationLifetime lifetime, TimeProvider time, ILogger<NcclGroupRank> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!experts.IsReady)
        {
            if (readiness.State == Serving.ReadinessState.Failed) return;
            await Task.Delay(TimeSpan.FromMilliseconds(250), time, stoppingToken).ConfigureAwait(false);
        }
        // After the shard loaded: CUDA is initialised, so the helper binds to the LibTorch already loaded.
        var helper = NativeHelper.TryLoad(out var reason);
        if (helper is null)
        {
            LogHelperMissing(logger, reason);
            readiness.MarkFailed();
            Environment.ExitCode = 1;
            lifetime.StopApplication();
            return;
        }
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            var outcome = await experts.RunWithModelAsync(model => JoinAndFollow(helper, model, stoppingToken), CancellationToken.None).ConfigureAwait(false);
            if (outcome.End == FollowEnd.Cancelled) return;
            failures = outcome.End == FollowEnd.Failed ? failures + 1 : 0;
            LogGroupEnded(logger, outcome.End, outcome.Reason, outcome.RowsServed);
            try
            {
                await Task.Delay(NcclFormation.RejoinDelay(outcome.End == FollowEnd.Failed, failures), time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>On the tensor thread: one group's life, from joining to its end.</summary>
    private FollowOutcome JoinAndFollow(NativeHelper helper, DeepSeekForCausalLM model, CancellationToken stoppingToken)
    {
        var settings = group.Settings;
        using var formed = NcclGroupJoin.TryJoin(helper, group, model.Device, generation: null, out var problem);
        if (formed is null) return new FollowOutcome(FollowEnd.Failed, problem, 0);
        LogJoined(logger, settings.Rank, formed.Generation, settings.WorldSize);
        // A placement change queued for this thread (Prepare, Commit) runs between the leader's headers.
        return NcclExpertFollower.Follow(formed, model, NcclFormation.IdleDeadline, ExpertGroup.ComputeDeadline, stoppingToken, experts.RunPending);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Rank {Rank} joined NCCL group generation {Generation} of {WorldSize} ranks")]
    private static partial void LogJoined(ILogger logger, int rank, long generation, int worldSize);

    [LoggerMessage(Level = LogLevel.Warning, Message = "NCCL group ended ({End}): {Reason}; {Rows} routed rows served; joining the next one")]
    private static partial void LogGroupEnded(ILogger logger, FollowEnd end, string reason, long rows);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The nccl expert transport cannot run: {Reason}")]
    private static partial void LogHelperMissing(ILogger logger, string reason);
}
