using System.Diagnostics;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Hosting;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Operator.Controller;

/// <summary>
/// The DeepSeekModel controller: watches models, the kinds they own and their pods into
/// <paramref name="cache"/> (what reconciles read), feeds their keys to the work queue, and runs
/// reconciles on a few workers until cancelled.
/// </summary>
public sealed class ModelController(
    IKubernetes client,
    ClusterCache cache,
    ModelReconciler reconciler,
    IReadOnlyList<string> namespaces,
    OperatorMetrics metrics,
    TimeProvider time,
    ILoggerFactory loggers,
    int workers = 2,
    Action<WatchEventType, DeepSeekModelDocument>? onModel = null)
{
    private readonly ILogger logger = loggers.CreateLogger<ModelController>();
    private readonly List<Task> synced = [];
    private ILogger WatchLogger => loggers.CreateLogger("DeepSeek.Operator.Watch");

    /// <summary>Completes when every watcher has listed once.</summary>
    public Task Synced => Task.WhenAll(synced);

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var queue = new WorkQueue(time);
        metrics.ObserveQueue(queue);
        var tasks = new List<Task>();
        foreach (var ns in namespaces.Count == 0 ? [(string?)null] : namespaces.Select(n => (string?)n))
        {
            tasks.Add(Start(new ResourceWatcher<DeepSeekModelDocument, DeepSeekModelDocumentList>(client, WatchedKinds.Models, ns, cache.Models, (type, m) =>
            {
                queue.Add(ObjectKey.Of(m.Metadata.NamespaceProperty, m.Metadata.Name));
                onModel?.Invoke(type, m);
            }, time, WatchLogger), cancellationToken));
            foreach (var kind in WatchedKinds.All)
                tasks.Add(Start(kind.Watcher(client, ns, cache.Of(kind), kind.Owned ? o => EnqueueOwner(queue, o) : o => EnqueueModelOf(queue, o), time, WatchLogger), cancellationToken));
        }
        try
        {
            // Reconciles read the caches: start them once every watch has listed (client-go's
            // WaitForCacheSync), or a restart would see models before their children and create twice.
            var all = Task.WhenAll(tasks);
            var listed = Synced;
            if (await Task.WhenAny(listed, all) == listed)
                for (var i = 0; i < workers; i++) tasks.Add(WorkAsync(queue, cancellationToken));
            await Task.WhenAll(tasks);
        }
        finally
        {
            queue.ShutDown();
        }
    }

    private Task Start(IResourceWatcher watcher, CancellationToken cancellationToken)
    {
        synced.Add(watcher.Synced);
        return watcher.RunAsync(cancellationToken);
    }

    private static void EnqueueOwner(WorkQueue queue, IKubernetesObject<V1ObjectMeta> item)
    {
        var owner = item.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true && o.Kind == V1Alpha1DeepSeekModel.KindName);
        if (owner is not null) queue.Add(ObjectKey.Of(item.Metadata.NamespaceProperty, owner.Name));
    }

    /// <summary>Pods are owned by ReplicaSets and StatefulSets, not by the model: their instance label names it.</summary>
    private static void EnqueueModelOf(WorkQueue queue, IKubernetesObject<V1ObjectMeta> pod)
    {
        if (pod.Metadata.Labels?.TryGetValue(ModelLabels.Instance, out var model) == true) queue.Add(ObjectKey.Of(pod.Metadata.NamespaceProperty, model));
    }

    private async Task WorkAsync(WorkQueue queue, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            string key;
            try
            {
                key = await queue.TakeAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            var started = Stopwatch.GetTimestamp();
            try
            {
                var result = await reconciler.ReconcileAsync(key, cancellationToken);
                metrics.Reconciled(result.Conflict ? "conflict" : "success", Stopwatch.GetElapsedTime(started));
                if (result.Conflict) queue.AddRateLimited(key);
                else
                {
                    queue.Forget(key);
                    if (result.RequeueAfter is { } after) queue.AddAfter(key, after);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // One model's failure, whatever it is, backs that key off; the workers keep going.
                metrics.Reconciled("error", Stopwatch.GetElapsedTime(started));
                var delay = queue.AddRateLimited(key);
                logger.LogWarning("Reconcile of {Key} failed: {Error}; retrying in {Delay}", key, e.Message, delay);
            }
            finally
            {
                queue.Done(key);
            }
        }
    }
}
