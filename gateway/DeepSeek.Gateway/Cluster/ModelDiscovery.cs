using System.Threading.Channels;
using DeepSeek.Gateway.Configuration;
using DeepSeek.Gateway.Upstream;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Controller;
using k8s;
using k8s.Models;

namespace DeepSeek.Gateway.Cluster;

/// <summary>
/// The model table of a cluster: the operator's own watches (<see cref="ResourceWatcher{T,TList}"/> into
/// <see cref="ObjectCache{T}"/>s: list, then watch from its version, relist on 410, back off on errors) of
/// <c>DeepSeekModel</c>s and of the runtime pods the operator creates, in each watched namespace (or all).
/// Any change recomputes the table (<see cref="ClusterModels.From"/>, pure) and replaces it in the
/// <see cref="ModelTable"/> the requests read. Changes that come together are folded into one recomputation.
/// </summary>
internal sealed partial class ModelDiscovery(IKubernetes client, ClusterConfig cluster, ModelTable table, TimeProvider time, ILogger<ModelDiscovery> logger) : BackgroundService
{
    private readonly ObjectCache<DeepSeekModelDocument> _models = new();
    private readonly ObjectCache<V1Pod> _pods = new(WatchedKinds.ModelPodOf);
    private readonly Channel<bool> _changes = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile Dictionary<string, IReadOnlyList<VariantSource>> _sources = new(StringComparer.Ordinal);
    private string _summary = "";

    /// <summary>Completes once every watch has listed and the table holds what they found.</summary>
    public Task Synced => _synced.Task;

    /// <summary>The <c>DeepSeekModel</c>s behind a public model as last seen (none for a name not published).</summary>
    public IReadOnlyList<VariantSource> Sources(string model) => _sources.GetValueOrDefault(model) ?? [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        List<string?> namespaces = cluster.Namespaces.Count == 0 ? [null] : [.. cluster.Namespaces];
        var watchers = new List<IResourceWatcher>();
        foreach (var ns in namespaces)
        {
            watchers.Add(new ResourceWatcher<DeepSeekModelDocument, DeepSeekModelDocumentList>(client, WatchedKinds.Models, ns, _models, (_, _) => Changed(), time, logger));
            watchers.Add(new ResourceWatcher<V1Pod, V1PodList>(client, WatchedKinds.Pods, ns, _pods, (_, _) => Changed(), time, logger));
        }
        var runs = watchers.Select(w => w.RunAsync(stoppingToken)).ToList();
        var synced = Task.WhenAll(watchers.Select(w => w.Synced));
        try
        {
            await Task.WhenAny(synced, Task.Delay(Timeout.Infinite, stoppingToken));
            if (stoppingToken.IsCancellationRequested) return;
            Recompute();
            _synced.TrySetResult();
            while (await _changes.Reader.WaitToReadAsync(stoppingToken))
            {
                while (_changes.Reader.TryRead(out _))
                {
                }
                Recompute();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            await Task.WhenAll(runs);
        }
    }

    private void Changed() => _changes.Writer.TryWrite(true);

    private void Recompute()
    {
        IReadOnlyList<DiscoveredModel> discovered;
        try
        {
            discovered = ClusterModels.From(_models.Items(), (ns, name) => _pods.ByIndex(ObjectKey.Of(ns, name)), cluster.Models);
        }
        catch (Exception e) when (e is NullReferenceException or ArgumentException or InvalidOperationException)
        {
            // A model the reader let through but that still cannot be laid out (a section set to null): keep the
            // table as it was rather than stop discovering; the next change tries again.
            LogFailed(logger, e);
            return;
        }
        // Sources first: a request held for a model that just appeared finds what to scale as soon as it finds the model.
        _sources = discovered.ToDictionary(d => d.Config.Name, d => d.Sources, StringComparer.Ordinal);
        table.Replace([.. discovered.Select(d => d.Config)]);
        var summary = string.Join("; ", discovered.Select(d => $"{d.Config.Name}: " + string.Join(", ",
            d.Config.Variants.Select(v => $"{v.Name} (weight {v.Weight}, {v.Endpoints.Count} ready)"))));
        if (summary == _summary) return;
        _summary = summary;
        LogTable(logger, discovered.Count, summary.Length == 0 ? "none" : summary);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The model table could not be recomputed; the last one is kept")]
    private static partial void LogFailed(ILogger logger, Exception error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Models in the cluster ({Count}): {Summary}")]
    private static partial void LogTable(ILogger logger, int count, string summary);
}
