using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Operator.Controller;

/// <summary>
/// List, then watch from the list's resourceVersion; follow bookmarks; when the stream ends, resume
/// from the last version seen; when the server says that version is gone (410), list again. Errors
/// back off exponentially with jitter. Every object seen goes into <c>cache</c> first and is then
/// handed to <c>onObject</c>, which maps it to a work-queue key: the queue, not the watcher, holds the
/// work. Nothing one object does (a handler that throws) stops the watcher: it logs and goes on.
/// It watches <c>kind</c> in namespace <c>ns</c> (null: in all), narrowed by <c>fieldSelector</c> when given
/// (<c>metadata.name=X</c>: one object, which is what RBAC's resourceNames allows a list or watch of).
/// </summary>
public sealed class ResourceWatcher<T, TList>(
    IKubernetes client,
    WatchedKind kind,
    string? ns,
    ObjectCache<T> cache,
    Action<WatchEventType, T> onObject,
    TimeProvider time,
    ILogger logger,
    string? fieldSelector = null) : IResourceWatcher
    where T : IKubernetesObject<V1ObjectMeta>
    where TList : IKubernetesObject<V1ListMeta>, IItems<T>
{
    private static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);
    private readonly TaskCompletionSource synced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes after the first full list.</summary>
    public Task Synced => synced.Task;

    /// <summary>How many times the watcher listed (1 + relists after 410).</summary>
    public int Lists { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        string? version = null;
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                if (version is null)
                {
                    using var list = await ListAsync(null, false, cancellationToken);
                    Lists++;
                    foreach (var gone in cache.Replace(list.Body.Items, ns)) Handle(WatchEventType.Deleted, gone);
                    foreach (var item in list.Body.Items) Handle(WatchEventType.Added, item);
                    version = list.Body.Metadata.ResourceVersion;
                    synced.TrySetResult();
                }
                Exception? streamError = null;
                // The generic WatchAsync over a list call is marked for replacement by per-kind WatchList*
                // methods, which exist for neither custom resources of our own types nor a shared code path.
#pragma warning disable CS0618
                await foreach (var (type, item) in ListAsync(version, true, cancellationToken)
                                   .WatchAsync<T, TList>(e => streamError = e, cancellationToken))
                {
                    version = item.Metadata?.ResourceVersion ?? version;
                    if (type is WatchEventType.Bookmark) continue;
                    cache.Apply(type, item);
                    Handle(type, item);
                    failures = 0;
                }
#pragma warning restore CS0618
                if (streamError is KubernetesException { Status.Code: 410 })
                {
                    logger.LogInformation("Watch of {Source} expired at {Version}; listing again", Source, version);
                    version = null;
                }
                else if (streamError is not null)
                {
                    throw streamError;
                }
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Gone)
            {
                version = null;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // Whatever failed (the server, the connection, a body that does not parse), the watch is
                // needed for as long as the process runs: back off and list or watch again.
                failures++;
                var delay = Backoff(failures);
                logger.LogWarning("Watch of {Source} failed ({Error}); retrying in {Delay}", Source, e.Message, delay);
                try
                {
                    await Task.Delay(delay, time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private string Source => kind.Plural + (ns is null ? " in all namespaces" : " in " + ns);

    // CustomObjects serves every group, the core one ("") included: one call lists and watches every kind.
    private Task<HttpOperationResponse<TList>> ListAsync(string? version, bool watch, CancellationToken cancellationToken) => ns is null
        ? client.CustomObjects.ListClusterCustomObjectWithHttpMessagesAsync<TList>(kind.Group, kind.Version, kind.Plural, allowWatchBookmarks: watch,
            fieldSelector: fieldSelector, labelSelector: kind.LabelSelector, resourceVersion: version, watch: watch, cancellationToken: cancellationToken)
        : client.CustomObjects.ListNamespacedCustomObjectWithHttpMessagesAsync<TList>(kind.Group, kind.Version, ns, kind.Plural, allowWatchBookmarks: watch,
            fieldSelector: fieldSelector, labelSelector: kind.LabelSelector, resourceVersion: version, watch: watch, cancellationToken: cancellationToken);

    private void Handle(WatchEventType type, T item)
    {
        try
        {
            onObject(type, item);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError(e, "Handling {Type} of {Name} from {Source} failed", type, item.Metadata?.Name, Source);
        }
    }

    private static TimeSpan Backoff(int failures)
    {
        var ms = Math.Min(MaxBackoff.TotalMilliseconds, MinBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(failures - 1, 20)));
        // Jitter, so that many watchers that failed together do not retry together.
        return TimeSpan.FromMilliseconds(ms * (0.5 + Random.Shared.NextDouble() / 2));
    }
}

/// <summary>A watcher of any kind, for code that iterates <see cref="WatchedKinds.All"/>.</summary>
public interface IResourceWatcher
{
    Task Synced { get; }

    Task RunAsync(CancellationToken cancellationToken);
}
