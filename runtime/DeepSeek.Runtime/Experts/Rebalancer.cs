using DeepSeek.Engine;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;
using DeepSeek.Runtime.Grpc.V1;
using DeepSeek.Runtime.Hosting;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// The group's expert rebalancing (<c>--rebalance-interval-seconds</c>), run by the leader, or with
/// data-parallel attention by rank 0. Every interval it asks <see cref="RebalancePolicy"/> whether the
/// picks observed since the last look (the leader's own; data-parallel: every rank's, summed) call for
/// another placement; if so it moves the group there without dropping or changing a request:
/// <list type="number">
/// <item><b>Prepare.</b> Every member, this one included (<see cref="PlacementStaging"/>, one MoE layer
/// between two steps at a time), loads the experts the new placement gives it from the memory-mapped
/// checkpoint, beside the ones in force, which go on serving.</item>
/// <item><b>Switch.</b> Leader shape: one work item between two engine steps commits the ranks and then
/// the leader's own layers, so the step before ran entirely on the old placement and the step after
/// entirely on the new one. Data-parallel: every rank commits between its own steps, each at its own
/// moment; a rank answers Compute calls of both versions until every rank has switched (it holds the
/// staged experts before its switch and the retired ones after), and then all free the old ones.
/// Every Compute call names the version it was routed by.</item>
/// <item><b>Failure.</b> If a member cannot prepare (memory, checkpoint, unreachable), the others
/// abandon what they loaded, the old placement stays, the reason is logged and counted
/// (<c>deepseek_ep_rebalances_total{result="failed"}</c>), and the next interval tries again.
/// A rank that misses a commit (it died in between), or restarts later with the initial placement,
/// is not ready (its Status names another version) until this brings it up to date.</item>
/// </list>
/// </summary>
public sealed partial class Rebalancer(ExpertGroup group, ExpertPeers peers, ObservedExpertLoad load, PlacementStaging staging, EngineService engine,
    ExpertParallelMetrics metrics, TimeProvider time, ILogger<Rebalancer> logger) : BackgroundService
{
    private static readonly TimeSpan Tick = TimeSpan.FromSeconds(1);
    // Reading a rank's new experts from the checkpoint: seconds for a big shard from a slow volume.
    private static readonly TimeSpan PrepareDeadline = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan CommitDeadline = TimeSpan.FromSeconds(30);

    private bool DataParallel => group.Settings.DataParallelAttention;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        InferenceEngine inference;
        try
        {
            inference = await engine.Engine.WaitAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (Exception)
        {
            return; // stopping, or the load failed (EngineService says why and stops the process)
        }
        var model = group.EngineModel ?? throw new InvalidOperationException("This member's model was not sharded for its group.");
        // The warm-up step is not traffic.
        load.Take();
        var lastLook = time.GetUtcNow();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Tick, time, stoppingToken).ConfigureAwait(false);
                await BringUpToDateAsync(stoppingToken).ConfigureAwait(false);
                var now = time.GetUtcNow();
                if (!RebalancePolicy.IsDue(lastLook, now, group.Settings.RebalanceInterval)) continue;
                lastLook = now;
                await LookAsync(inference, model, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // Serving goes on with the placement in force whatever went wrong here.
                metrics.RecordRebalance(ExpertParallelMetrics.Failed);
                LogRebalanceFailed(logger, e, group.Placement.Version, e.Message);
            }
            finally
            {
                group.PlacementChanging = false;
            }
        }
    }

    // Touched by the loop only.
    private IReadOnlyList<ExpertLoad>? _history;

    private async Task LookAsync(InferenceEngine inference, DeepSeekForCausalLM model, CancellationToken cancellationToken)
    {
        var readiness = peers.Readiness;
        if (!readiness.Ready)
        {
            LogNotNow(logger, readiness.Message);
            return;
        }
        var current = group.Placement;
        _history = RebalancePolicy.Accumulate(_history, DataParallel ? await GroupLoadAsync(cancellationToken).ConfigureAwait(false) : load.Take());
        var decision = RebalancePolicy.Decide(current, _history, group.Settings.RedundantExperts);
        if (!decision.Switches)
        {
            LogKept(logger, current.Version, decision.Reason);
            return;
        }
        var next = decision.Next!;
        var started = time.GetTimestamp();
        group.PlacementChanging = true;
        var loaded = await PrepareAsync(model, next, cancellationToken).ConfigureAwait(false);
        var uncommitted = DataParallel
            ? await SwitchEveryRankAsync(model, current, next).ConfigureAwait(false)
            : await SwitchAsync(inference, model, next).ConfigureAwait(false);
        metrics.RecordRebalance(ExpertParallelMetrics.Switched);
        var seconds = time.GetElapsedTime(started).TotalSeconds;
        LogSwitched(logger, current.Version, next.Version, decision.Reason, loaded, seconds);
        foreach (var (rank, reason) in uncommitted) LogRankMissedCommit(logger, rank, next.Version, reason);
    }

    /// <summary>Data-parallel: each rank observes only its own forwards' picks; the group's are their sum.</summary>
    private async Task<IReadOnlyList<ExpertLoad>> GroupLoadAsync(CancellationToken cancellationToken)
    {
        var own = load.Take();
        var theirs = await Task.WhenAll(peers.Ranks.Order().Select(rank => peers.ExpertLoadAsync(rank, CommitDeadline, cancellationToken))).ConfigureAwait(false);
        return RebalancePolicy.Sum(theirs.Prepend(own));
    }

    /// <summary>Every member loads its experts of <paramref name="next"/>; if one cannot, all free what they loaded and this throws why. Returns the experts loaded.</summary>
    private async Task<int> PrepareAsync(DeepSeekForCausalLM model, ExpertPlacement next, CancellationToken cancellationToken)
    {
        var request = PlacementMessages.ToRequest(next);
        var ranks = peers.Ranks.Order().ToList();
        var prepares = ranks.Select(rank => peers.PrepareAsync(rank, request, PrepareDeadline, cancellationToken)).Prepend(staging.PrepareAsync(model, next, cancellationToken)).ToList();
        var members = ranks.Prepend(group.Settings.Rank).ToList();
        try
        {
            await Task.WhenAll(prepares).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Each failure is read below.
        }
        var failures = prepares.Select((task, i) => task.IsCompletedSuccessfully ? null
            : $"rank {members[i]}{(i == 0 ? " (this one)" : "")}: {task.Exception?.InnerException?.Message ?? "cancelled"}").OfType<string>().ToList();
        if (failures.Count == 0) return prepares.Sum(p => p.Result.ExpertsMoved);

        await ReleaseAsync(model, ranks, next.Version).ConfigureAwait(false);
        throw new InvalidOperationException($"Placement {next.Version} was not prepared everywhere, the group keeps placement {group.Placement.Version}: {string.Join("; ", failures)}");
    }

    /// <summary>
    /// Leader shape, between two engine steps: the ranks commit (the next step's calls carry the new
    /// version), then the leader switches its own layers. Returns the ranks that did not confirm (brought up to date later).
    /// </summary>
    private async Task<List<(int Rank, string Reason)>> SwitchAsync(InferenceEngine inference, DeepSeekForCausalLM model, ExpertPlacement next)
    {
        var ranks = peers.Ranks.Order().ToList();
        group.SwitchingTo(next);
        return await inference.RunBetweenStepsAsync(() =>
        {
            var commits = ranks.Select(rank => peers.CommitAsync(rank, next.Version, CommitDeadline, CancellationToken.None)).ToList();
            try
            {
                Task.WhenAll(commits).GetAwaiter().GetResult();
            }
            catch (ExpertTransportException)
            {
                // Read per rank below.
            }
            // Prepared everywhere: the leader switches even if a rank did not confirm (it died or its
            // answer was lost); that rank reports another version and is brought up to date, while
            // the others already run the new placement and must not be switched back.
            try
            {
                staging.Commit(model, next.Version);
            }
            catch
            {
                // The leader stays on its placement (its staged experts go at the next prepare); ranks
                // that committed now report another version and are brought back to it.
                group.SwitchingTo(null);
                throw;
            }
            return Unconfirmed(ranks, commits);
        }).ConfigureAwait(false);
    }

    /// <summary>
    /// Data-parallel: every rank, this one included, commits between its own steps; until all have, each
    /// answers both versions. When all confirmed, every rank frees the last placement's experts; a rank
    /// that did not confirm is brought up to date later, and the others keep answering its version until then.
    /// </summary>
    private async Task<List<(int Rank, string Reason)>> SwitchEveryRankAsync(DeepSeekForCausalLM model, ExpertPlacement current, ExpertPlacement next)
    {
        var ranks = peers.Ranks.Order().ToList();
        var commits = ranks.Select(rank => peers.CommitAsync(rank, next.Version, CommitDeadline, CancellationToken.None)).ToList();
        var own = staging.CommitAsync(model, next.Version);
        try
        {
            await Task.WhenAll(commits.Append(own)).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Read per member below.
        }
        var unconfirmed = Unconfirmed(ranks, commits);
        if (!own.IsCompletedSuccessfully) unconfirmed.Insert(0, (group.Settings.Rank, own.Exception?.InnerException?.Message ?? "cancelled"));
        if (unconfirmed.Count == 0) await ReleaseAsync(model, ranks, current.Version).ConfigureAwait(false);
        return unconfirmed;
    }

    /// <summary>
    /// Every member, this one included, frees the experts of <paramref name="version"/> it holds beside those
    /// in force: a staged placement given up, or (data-parallel) one no rank routes by any more.
    /// </summary>
    private async Task ReleaseAsync(DeepSeekForCausalLM model, IEnumerable<int> ranks, long version)
    {
        await Task.WhenAll(ranks.Select(async rank =>
        {
            try
            {
                await peers.AbandonAsync(rank, version, CommitDeadline, CancellationToken.None).ConfigureAwait(false);
            }
            catch (ExpertTransportException)
            {
                // A rank that cannot be told frees them at its next prepare.
            }
        }).Append(staging.AbandonAsync(model, version))).ConfigureAwait(false);
    }

    private static List<(int Rank, string Reason)> Unconfirmed(List<int> ranks, List<Task<PlacementReply>> commits) =>
        [.. commits.Select((task, i) => (Rank: ranks[i], Task: task)).Where(c => !c.Task.IsCompletedSuccessfully)
            .Select(c => (c.Rank, c.Task.Exception?.InnerException?.Message ?? "cancelled"))];

    /// <summary>Ranks running another placement than the group (restarted after a rebalance) get the one in force.</summary>
    private async Task BringUpToDateAsync(CancellationToken cancellationToken)
    {
        foreach (var rank in peers.RanksOnOtherPlacements())
        {
            group.PlacementChanging = true;
            var current = group.Placement;
            try
            {
                var before = await peers.PrepareAsync(rank, PlacementMessages.ToRequest(current), PrepareDeadline, cancellationToken).ConfigureAwait(false);
                await peers.CommitAsync(rank, current.Version, CommitDeadline, cancellationToken).ConfigureAwait(false);
                // Data-parallel: every rank kept the experts of that rank's old version to answer it (the rank
                // too, once it switched); no rank routes by it any more.
                if (DataParallel && group.EngineModel is { } model) await ReleaseAsync(model, peers.Ranks, before.PlacementVersion).ConfigureAwait(false);
                LogBroughtUpToDate(logger, rank, current.Version);
            }
            catch (ExpertTransportException e)
            {
                LogNotBroughtUpToDate(logger, rank, current.Version, e.Message);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Expert placement {From} → {To}: {Reason}; {Experts} experts loaded from the checkpoint, switched in {Seconds:0.00} s")]
    private static partial void LogSwitched(ILogger logger, long from, long to, string reason, int experts, double seconds);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Expert placement {Version} kept: {Reason}")]
    private static partial void LogKept(ILogger logger, long version, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "No rebalance now: {Reason}")]
    private static partial void LogNotNow(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rebalancing failed; placement {Version} stays in force and the next interval tries again: {Reason}")]
    private static partial void LogRebalanceFailed(ILogger logger, Exception exception, long version, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rank {Rank} did not confirm placement {Version} ({Reason}); it is not ready until brought up to date")]
    private static partial void LogRankMissedCommit(ILogger logger, int rank, long version, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rank {Rank} brought up to expert placement {Version}")]
    private static partial void LogBroughtUpToDate(ILogger logger, int rank, long version);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rank {Rank} could not be brought up to expert placement {Version}: {Reason}")]
    private static partial void LogNotBroughtUpToDate(ILogger logger, int rank, long version, string reason);
}
