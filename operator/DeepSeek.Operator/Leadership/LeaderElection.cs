using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Operator.Leadership;

/// <summary>
/// Runs work only while this process holds the coordination.k8s.io Lease, with client-go's leader
/// election algorithm: campaign every retry period; once leading, renew every retry period and keep
/// leading through failed renewals until the renew deadline passes since the last good one; then stop
/// the work, wait for it to stop, and campaign again. Another holder's lease counts as expired only
/// after a lease duration of this process's own clock without seeing it renewed (no clock skew).
/// Every failed call (connection refused, 403, 500, a timeout) is reported through
/// <see cref="LeaseProblem"/> and logged at Warning with its cause, and never ends the process:
/// KubernetesClient's own LeaderElector throws on a refused connection and gives leadership up on
/// the first failed renewal, which is why this one exists. Stopping releases the lease so a standby
/// takes over at its next retry instead of after the lease expires.
/// </summary>
public sealed class LeaderElection(IKubernetes client, LeaderElectionSettings settings, TimeProvider time, ILogger<LeaderElection> logger)
{
    private V1Lease? observed;
    private DateTimeOffset observedAt;
    private string? lastProblem;
    private string? reportedHolder;

    public event Action<bool>? LeadershipChanged;

    /// <summary>The lease was read and names a holder (another process, or none): the API server answers.</summary>
    public event Action<string>? LeaderObserved;

    /// <summary>A lease call failed (the cause, for people) or succeeded again (null).</summary>
    public event Action<string?>? LeaseProblem;

    public async Task RunAsync(Func<CancellationToken, Task> whileLeading, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(whileLeading);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                if (!await AcquireAsync(cancellationToken)) return;
                await LeadAsync(whileLeading, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped while a lease call was in flight: a stop, not a failure; the lease is released below.
        }
        finally
        {
            await ReleaseAsync();
        }
    }

    /// <summary>Campaigns until this process holds the lease; false when cancelled first.</summary>
    private async Task<bool> AcquireAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            if (await TryAcquireOrRenewAsync(cancellationToken)) return true;
            if (!await DelayAsync(Jittered(settings.RetryPeriod), cancellationToken)) return false;
        }
        return false;
    }

    private async Task LeadAsync(Func<CancellationToken, Task> whileLeading, CancellationToken cancellationToken)
    {
        logger.LogInformation("{Identity} became leader of {Namespace}/{Lease}", settings.Identity, settings.Namespace, settings.LeaseName);
        LeadershipChanged?.Invoke(true);
        using var leading = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var work = Task.Run(() => whileLeading(leading.Token), CancellationToken.None);
        var renewed = time.GetUtcNow();
        try
        {
            while (!cancellationToken.IsCancellationRequested && !work.IsCompleted)
            {
                if (!await DelayAsync(settings.RetryPeriod, cancellationToken)) break;
                if (await TryAcquireOrRenewAsync(cancellationToken))
                {
                    renewed = time.GetUtcNow();
                    continue;
                }
                if (IsHeldByOther())
                {
                    logger.LogWarning("{Identity} lost the lease to {Holder}", settings.Identity, observed?.Spec?.HolderIdentity);
                    break;
                }
                if (time.GetUtcNow() - renewed >= settings.RenewDeadline)
                {
                    // Past the renew deadline another process may take the lease (its duration is longer):
                    // stop acting now so that two never act at once.
                    logger.LogWarning("{Identity} could not renew the lease within {Deadline}; stopping work", settings.Identity, settings.RenewDeadline);
                    break;
                }
            }
        }
        finally
        {
            logger.LogInformation("{Identity} stopped leading", settings.Identity);
            await leading.CancelAsync();
            try
            {
                await work;
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception e)
            {
                // The work's own failure: it ended this term; the next term starts it afresh.
                logger.LogError(e, "The controller stopped with an error; campaigning again");
            }
            LeadershipChanged?.Invoke(false);
        }
    }

    /// <summary>One round of client-go's tryAcquireOrRenew: read (or create) the lease and take or renew it if free, expired or ours.</summary>
    private async Task<bool> TryAcquireOrRenewAsync(CancellationToken cancellationToken)
    {
        // A hung call must not outlive the renew deadline.
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attempt.CancelAfter(settings.RenewDeadline);
        var now = time.GetUtcNow();
        try
        {
            V1Lease? lease;
            try
            {
                lease = await client.CoordinationV1.ReadNamespacedLeaseAsync(settings.LeaseName, settings.Namespace, cancellationToken: attempt.Token);
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
            {
                lease = null;
            }
            if (lease is null)
            {
                var created = await client.CoordinationV1.CreateNamespacedLeaseAsync(new V1Lease
                {
                    Metadata = new V1ObjectMeta { Name = settings.LeaseName, NamespaceProperty = settings.Namespace },
                    Spec = Spec(now, acquired: now.UtcDateTime, transitions: 0),
                }, settings.Namespace, cancellationToken: attempt.Token);
                Observe(created, now);
                Healthy();
                return true;
            }
            Observe(lease, now);
            Healthy();
            var holder = lease.Spec?.HolderIdentity;
            var mine = holder == settings.Identity;
            var expired = now - observedAt >= TimeSpan.FromSeconds(lease.Spec?.LeaseDurationSeconds ?? (int)settings.LeaseDuration.TotalSeconds);
            if (!string.IsNullOrEmpty(holder) && !mine && !expired) return false;
            lease.Spec ??= new V1LeaseSpec();
            var transitions = (lease.Spec.LeaseTransitions ?? 0) + (mine ? 0 : 1);
            lease.Spec = Spec(now, mine ? lease.Spec.AcquireTime ?? now.UtcDateTime : now.UtcDateTime, transitions);
            var updated = await client.CoordinationV1.ReplaceNamespacedLeaseAsync(lease, settings.LeaseName, settings.Namespace, cancellationToken: attempt.Token);
            Observe(updated, now);
            return true;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            // Someone else wrote the lease between our read and write: they won this round.
            return false;
        }
        catch (Exception e) when (e is HttpOperationException or HttpRequestException or IOException or KubernetesException
                                      || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            Problem(e);
            return false;
        }
    }

    private V1LeaseSpec Spec(DateTimeOffset now, DateTime acquired, int transitions) => new()
    {
        HolderIdentity = settings.Identity,
        LeaseDurationSeconds = (int)settings.LeaseDuration.TotalSeconds,
        AcquireTime = acquired,
        RenewTime = now.UtcDateTime,
        LeaseTransitions = transitions,
    };

    /// <summary>Remembers when the lease last changed, by this process's clock (client-go's observedTime).</summary>
    private void Observe(V1Lease lease, DateTimeOffset now)
    {
        if (observed is null || observed.Spec?.HolderIdentity != lease.Spec?.HolderIdentity || observed.Spec?.RenewTime != lease.Spec?.RenewTime)
            observedAt = now;
        observed = lease;
        var holder = lease.Spec?.HolderIdentity ?? "";
        if (holder != reportedHolder)
        {
            reportedHolder = holder;
            LeaderObserved?.Invoke(holder);
        }
    }

    private bool IsHeldByOther() =>
        observed?.Spec?.HolderIdentity is { Length: > 0 } holder && holder != settings.Identity;

    private void Healthy()
    {
        if (lastProblem is null) return;
        logger.LogInformation("Lease {Namespace}/{Lease} reachable again", settings.Namespace, settings.LeaseName);
        lastProblem = null;
        LeaseProblem?.Invoke(null);
    }

    private void Problem(Exception e)
    {
        var cause = e switch
        {
            HttpOperationException h => $"{(int)h.Response.StatusCode} {h.Response.StatusCode}: {Controller.ModelReconciler.ApiMessage(h)}",
            OperationCanceledException => $"no answer within {settings.RenewDeadline.TotalSeconds:0.#} s",
            _ => e.Message,
        };
        var problem = $"lease {settings.Namespace}/{settings.LeaseName}: {cause}";
        // A new cause is a Warning; the same cause every retry period after it is noise at that level
        // (/readyz and the leader metric keep saying it while it lasts).
        if (problem != lastProblem) logger.LogWarning("Leader election cannot read or write {Problem}", problem);
        else logger.LogDebug("Leader election still failing: {Problem}", problem);
        lastProblem = problem;
        LeaseProblem?.Invoke(problem);
    }

    private async Task<bool> DelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, time, cancellationToken);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>client-go's wait.Jitter(retryPeriod, 1.2): spreads the campaigns of many standbys.</summary>
    private static TimeSpan Jittered(TimeSpan period) => period * (1 + 1.2 * Random.Shared.NextDouble());

    /// <summary>Gives the lease up if we hold it (a fresh token: the run's own is cancelled by now).</summary>
    private async Task ReleaseAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            var current = await client.CoordinationV1.ReadNamespacedLeaseAsync(settings.LeaseName, settings.Namespace, cancellationToken: timeout.Token);
            if (current.Spec?.HolderIdentity != settings.Identity) return;
            // Empty, not absent: an elector that treats a lease without a holder field as missing would try to create it.
            current.Spec.HolderIdentity = "";
            current.Spec.LeaseDurationSeconds = 1;
            await client.CoordinationV1.ReplaceNamespacedLeaseAsync(current, settings.LeaseName, settings.Namespace, cancellationToken: timeout.Token);
            logger.LogInformation("{Identity} released the lease", settings.Identity);
        }
        catch (Exception e) when (e is HttpOperationException or HttpRequestException or IOException or OperationCanceledException)
        {
            // Not releasing only delays the standby by one lease duration.
            logger.LogDebug("Lease not released: {Error}", e.Message);
        }
    }
}
