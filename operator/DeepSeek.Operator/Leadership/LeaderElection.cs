using System.Net;
using k8s;
using k8s.Autorest;
using k8s.LeaderElection;
using k8s.LeaderElection.ResourceLock;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Operator.Leadership;

/// <summary>
/// Runs work only while this process holds the coordination.k8s.io Lease (KubernetesClient's
/// <see cref="LeaderElector"/> over a <see cref="LeaseLock"/>). Losing the lease cancels the work and
/// waits for it to stop before campaigning again, so two processes never act at once; stopping
/// releases the lease so a standby takes over at its next retry instead of after the lease expires.
/// </summary>
public sealed class LeaderElection(IKubernetes client, LeaderElectionSettings settings, ILogger<LeaderElection> logger)
{
    public event Action<bool>? LeadershipChanged;

    /// <summary>The lease was read and names a holder (another process, or none): the API server answers.</summary>
    public event Action<string>? LeaderObserved;

    public async Task RunAsync(Func<CancellationToken, Task> whileLeading, CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                await CampaignAsync(whileLeading, cancellationToken);
            }
        }
        finally
        {
            await ReleaseAsync();
        }
    }

    private async Task CampaignAsync(Func<CancellationToken, Task> whileLeading, CancellationToken cancellationToken)
    {
        var lease = new LeaseLock(client, settings.Namespace, settings.LeaseName, settings.Identity);
        using var elector = new LeaderElector(new LeaderElectionConfig(lease)
        {
            LeaseDuration = settings.LeaseDuration,
            RenewDeadline = settings.RenewDeadline,
            RetryPeriod = settings.RetryPeriod,
        });
        using var leading = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task work = Task.CompletedTask;
        elector.OnStartedLeading += () =>
        {
            logger.LogInformation("{Identity} became leader of {Namespace}/{Lease}", settings.Identity, settings.Namespace, settings.LeaseName);
            LeadershipChanged?.Invoke(true);
            work = Task.Run(() => whileLeading(leading.Token), CancellationToken.None);
        };
        elector.OnStoppedLeading += () =>
        {
            logger.LogInformation("{Identity} stopped leading", settings.Identity);
            leading.Cancel();
        };
        elector.OnNewLeader += holder => LeaderObserved?.Invoke(holder);
        elector.OnError += e => logger.LogDebug("Leader election: {Error}", e.Message);
        try
        {
            await elector.RunUntilLeadershipLostAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            await leading.CancelAsync();
            try
            {
                await work;
            }
            catch (OperationCanceledException)
            {
            }
            LeadershipChanged?.Invoke(false);
        }
    }

    /// <summary>Gives the lease up if we hold it (a fresh token: the run's own is cancelled by now).</summary>
    private async Task ReleaseAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            var current = await client.CoordinationV1.ReadNamespacedLeaseAsync(settings.LeaseName, settings.Namespace, cancellationToken: timeout.Token);
            if (current.Spec?.HolderIdentity != settings.Identity) return;
            // Empty, not absent: KubernetesClient's elector treats a lease without a holder field as missing and tries to create it.
            current.Spec.HolderIdentity = "";
            current.Spec.LeaseDurationSeconds = 1;
            await client.CoordinationV1.ReplaceNamespacedLeaseAsync(current, settings.LeaseName, settings.Namespace, cancellationToken: timeout.Token);
            logger.LogInformation("{Identity} released the lease", settings.Identity);
        }
        catch (Exception e) when (e is HttpOperationException or HttpRequestException or OperationCanceledException)
        {
            // Not releasing only delays the standby by one lease duration.
            logger.LogDebug("Lease not released: {Error}", e.Message);
        }
    }
}
