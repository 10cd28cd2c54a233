using System.Diagnostics;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Hosting;
using k8s;
using k8s.Autorest;
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
    private const string G = V1Alpha1DeepSeekModel.Group;
    private const string V = V1Alpha1DeepSeekModel.Version;
    private const string P = V1Alpha1DeepSeekModel.Plural;
    private readonly ILogger logger = loggers.CreateLogger<ModelController>();
    private readonly List<Task> synced = [];

    /// <summary>Completes when every watcher has listed once.</summary>
    public Task Synced => Task.WhenAll(synced);

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var queue = new WorkQueue(time);
        metrics.ObserveQueue(queue);
        var tasks = new List<Task>();
        foreach (var ns in namespaces.Count == 0 ? [(string?)null] : namespaces.Select(n => (string?)n))
        {
            tasks.Add(Watch(ModelSource(ns), cache.Models, (type, m) =>
            {
                queue.Add(ObjectKey.Of(m.Metadata.NamespaceProperty, m.Metadata.Name));
                onModel?.Invoke(type, m);
            }, cancellationToken));
            Action<IKubernetesObject<V1ObjectMeta>> owner = o => EnqueueOwner(queue, o);
            tasks.Add(Watch(new WatchSource<V1Pod, V1PodList>("pods" + In(ns), (rv, w, ct) => ns is null
                ? client.CoreV1.ListPodForAllNamespacesWithHttpMessagesAsync(allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)
                : client.CoreV1.ListNamespacedPodWithHttpMessagesAsync(ns, allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)), cache.Pods, p => EnqueueModelOf(queue, p), cancellationToken));
            tasks.Add(Watch(new WatchSource<V1Deployment, V1DeploymentList>("deployments" + In(ns), (rv, w, ct) => ns is null
                ? client.AppsV1.ListDeploymentForAllNamespacesWithHttpMessagesAsync(allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)
                : client.AppsV1.ListNamespacedDeploymentWithHttpMessagesAsync(ns, allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)), cache.Deployments, owner, cancellationToken));
            tasks.Add(Watch(new WatchSource<V1StatefulSet, V1StatefulSetList>("statefulsets" + In(ns), (rv, w, ct) => ns is null
                ? client.AppsV1.ListStatefulSetForAllNamespacesWithHttpMessagesAsync(allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)
                : client.AppsV1.ListNamespacedStatefulSetWithHttpMessagesAsync(ns, allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)), cache.StatefulSets, owner, cancellationToken));
            tasks.Add(Watch(new WatchSource<V1Service, V1ServiceList>("services" + In(ns), (rv, w, ct) => ns is null
                ? client.CoreV1.ListServiceForAllNamespacesWithHttpMessagesAsync(allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)
                : client.CoreV1.ListNamespacedServiceWithHttpMessagesAsync(ns, allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)), cache.Services, owner, cancellationToken));
            tasks.Add(Watch(new WatchSource<V1ConfigMap, V1ConfigMapList>("configmaps" + In(ns), (rv, w, ct) => ns is null
                ? client.CoreV1.ListConfigMapForAllNamespacesWithHttpMessagesAsync(allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)
                : client.CoreV1.ListNamespacedConfigMapWithHttpMessagesAsync(ns, allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)), cache.ConfigMaps, owner, cancellationToken));
            tasks.Add(Watch(new WatchSource<V1PodDisruptionBudget, V1PodDisruptionBudgetList>("poddisruptionbudgets" + In(ns), (rv, w, ct) => ns is null
                ? client.PolicyV1.ListPodDisruptionBudgetForAllNamespacesWithHttpMessagesAsync(allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)
                : client.PolicyV1.ListNamespacedPodDisruptionBudgetWithHttpMessagesAsync(ns, allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)), cache.DisruptionBudgets, owner, cancellationToken));
            // By the managed-by label like every other kind: the operator never lists the namespace's other Secrets.
            tasks.Add(Watch(new WatchSource<V1Secret, V1SecretList>("secrets" + In(ns), (rv, w, ct) => ns is null
                ? client.CoreV1.ListSecretForAllNamespacesWithHttpMessagesAsync(allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)
                : client.CoreV1.ListNamespacedSecretWithHttpMessagesAsync(ns, allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)), cache.Secrets, owner, cancellationToken));
            tasks.Add(Watch(new WatchSource<V1NetworkPolicy, V1NetworkPolicyList>("networkpolicies" + In(ns), (rv, w, ct) => ns is null
                ? client.NetworkingV1.ListNetworkPolicyForAllNamespacesWithHttpMessagesAsync(allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)
                : client.NetworkingV1.ListNamespacedNetworkPolicyWithHttpMessagesAsync(ns, allowWatchBookmarks: w, labelSelector: ModelLabels.ManagedSelector, resourceVersion: rv, watch: w, cancellationToken: ct)), cache.NetworkPolicies, owner, cancellationToken));
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

    // Models are read as documents (spec as JSON): one model whose spec cannot be read must not fail the list of all.
    private WatchSource<DeepSeekModelDocument, DeepSeekModelDocumentList> ModelSource(string? ns) => new("deepseekmodels" + In(ns), (rv, w, ct) => ns is null
        ? client.CustomObjects.ListCustomObjectForAllNamespacesWithHttpMessagesAsync<DeepSeekModelDocumentList>(G, V, P, allowWatchBookmarks: w, resourceVersion: rv, watch: w, cancellationToken: ct)
        : client.CustomObjects.ListNamespacedCustomObjectWithHttpMessagesAsync<DeepSeekModelDocumentList>(G, V, ns, P, allowWatchBookmarks: w, resourceVersion: rv, watch: w, cancellationToken: ct));

    private Task Watch<T, TList>(WatchSource<T, TList> source, ObjectCache<T> store, Action<T> onObject, CancellationToken cancellationToken)
        where T : IKubernetesObject<V1ObjectMeta>
        where TList : IKubernetesObject<V1ListMeta>, IItems<T> =>
        Watch(source, store, (_, item) => onObject(item), cancellationToken);

    private Task Watch<T, TList>(WatchSource<T, TList> source, ObjectCache<T> store, Action<WatchEventType, T> onObject, CancellationToken cancellationToken)
        where T : IKubernetesObject<V1ObjectMeta>
        where TList : IKubernetesObject<V1ListMeta>, IItems<T>
    {
        var watcher = new ResourceWatcher<T, TList>(source, store, onObject, time, loggers.CreateLogger("DeepSeek.Operator.Watch"));
        synced.Add(watcher.Synced);
        return watcher.RunAsync(cancellationToken);
    }

    private static void EnqueueOwner(WorkQueue queue, IKubernetesObject<V1ObjectMeta> item)
    {
        var owner = item.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true && o.Kind == V1Alpha1DeepSeekModel.KindName);
        if (owner is not null) queue.Add(ObjectKey.Of(item.Metadata.NamespaceProperty, owner.Name));
    }

    /// <summary>Pods are owned by ReplicaSets and StatefulSets, not by the model: their instance label names it.</summary>
    private static void EnqueueModelOf(WorkQueue queue, V1Pod pod)
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

    private static string In(string? ns) => ns is null ? " in all namespaces" : " in " + ns;
}
